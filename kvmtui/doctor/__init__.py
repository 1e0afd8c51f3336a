"""The doctor: from the host model (and, with ``--watch``, from the wire and the kernel's own
drop tracepoint) to ranked findings in plain words. Headless: imports no Textual."""
