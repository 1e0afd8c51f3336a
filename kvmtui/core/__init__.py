"""The headless core: everything that reads the host. Imports no Textual."""
