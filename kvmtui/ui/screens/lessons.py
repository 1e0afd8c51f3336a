"""``L``: the seed's lessons (lab only). Per lesson the seed's claim, a short explanation of what
to look at, and one key (Enter) that runs the experiment (``kvmtui.lab.lessons.trigger``, in a
thread worker: it blocks) and then opens the view that proves it. English and Vietnamese: ``v``
switches (``kvmtui --lang vi`` starts in Vietnamese)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from kvmtui.lab.lessonmodel import Lesson

Trigger = Callable[[str, str], str]

WORDS = {
    "en": {
        "title": "Lessons of the seed",
        "claim": "Claim",
        "explain": "What to look at",
        "run": "Enter: open the {view} view that proves it, then run the experiment",
        "run_after": "Enter: run the experiment, then open the {view} view that proves it",
        "running": "running the experiment…",
        "not_lab": "Lessons run on the lab only: start the explorer with "
        "kvmtui lab --prefix P exec -- kvmtui (KVMTUI_LAB_PREFIX is not set here).",
        "section": "seed section",
    },
    "vi": {
        "title": "Bài học của seed",
        "claim": "Khẳng định",
        "explain": "Cần xem gì",
        "run": "Enter: mở màn hình {view} để chứng minh, rồi chạy thí nghiệm",
        "run_after": "Enter: chạy thí nghiệm, rồi mở màn hình {view} để chứng minh",
        "running": "đang chạy thí nghiệm…",
        "not_lab": "Bài học chỉ chạy trong lab: mở explorer bằng "
        "kvmtui lab --prefix P exec -- kvmtui (ở đây KVMTUI_LAB_PREFIX chưa được đặt).",
        "section": "mục của seed",
    },
}


def lab_prefix() -> str | None:
    prefix = os.environ.get("KVMTUI_LAB_PREFIX", "").strip()
    return prefix or None


def real_lessons() -> tuple[Sequence[Lesson], Trigger]:
    from kvmtui.lab import lessons  # the lab's own module (no Textual)

    return tuple(lessons.LESSONS), lessons.trigger


# views that must be watching before the experiment runs: its first frames are the proof (the
# flood before the bridge re-learns, the fresh DHCP exchange); a path is there before and after
LIVE_VIEWS = ("capture", "dhcp", "switch")
LEAD_S = 1.5  # the view's capture opens its sockets meanwhile (as ``kvmtui lab lesson`` waits)


class LessonRan(Message):
    def __init__(self, lesson: Lesson, output: str, opened: bool = False) -> None:
        super().__init__()
        self.lesson = lesson
        self.output = output
        self.opened = opened  # the view was opened before the experiment ran


def _text(d: dict[str, str], lang: str) -> str:
    return d.get(lang) or d.get("en") or ""


class LessonsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="lessons.back"),
        Binding("v", "toggle_lang", "English/Tiếng Việt", id="lessons.lang"),
    ]
    DEFAULT_CSS = """
    LessonsScreen #lessons-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    LessonsScreen OptionList { height: auto; max-height: 9; border: round $panel; }
    LessonsScreen OptionList:focus { border: heavy $accent; }
    LessonsScreen VerticalScroll { height: 1fr; padding: 0 1; }
    LessonsScreen #lessons-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self,
        *,
        lang: str = "en",
        prefix: str | None = None,
        lessons: Sequence[Lesson] | None = None,
        trigger: Trigger | None = None,
        on_view: Callable[[Lesson], None] | None = None,
        lead_s: float = LEAD_S,
    ) -> None:
        super().__init__()
        self.lang = lang if lang in WORDS else "en"
        self.prefix = prefix
        self._lessons = tuple(lessons) if lessons is not None else None
        self._trigger = trigger
        self._on_view = on_view
        self.lead_s = lead_s
        self.status = ""

    @property
    def lessons(self) -> tuple[Lesson, ...]:
        return self._lessons or ()

    def compose(self) -> ComposeResult:
        yield Static("", id="lessons-title")
        yield OptionList(id="lessons-list")
        with VerticalScroll():
            yield Static("", id="lessons-body")
        yield Static("", id="lessons-status")
        yield Footer()

    def on_mount(self) -> None:
        if self.prefix is not None and self._lessons is None:
            lessons, trigger = real_lessons()
            self._lessons = tuple(lessons)
            self._trigger = self._trigger or trigger
        self._render_all()
        self.query_one(OptionList).focus()

    def _w(self, key: str) -> str:
        return WORDS[self.lang][key]

    def _render_all(self) -> None:
        opts = self.query_one(OptionList)
        self.query_one("#lessons-title", Static).update(escape(self._w("title")))
        if self.prefix is None:
            opts.display = False
            self.query_one("#lessons-body", Static).update(escape(self._w("not_lab")))
            return
        highlighted = opts.highlighted or 0
        opts.clear_options()
        opts.add_options(
            [
                Option(f"{le.seed_section:>4}  {_text(le.title, self.lang)}", id=le.name)
                for le in self.lessons
            ]
        )
        if self.lessons:
            opts.highlighted = min(highlighted, len(self.lessons) - 1)
        self._show_lesson()

    def current(self) -> Lesson | None:
        i = self.query_one(OptionList).highlighted
        return self.lessons[i] if i is not None and 0 <= i < len(self.lessons) else None

    def _show_lesson(self) -> None:
        le = self.current()
        body = self.query_one("#lessons-body", Static)
        status = self.query_one("#lessons-status", Static)
        if le is None:
            body.update(escape(self.status))
            return
        body.update(
            f"[b]{escape(_text(le.title, self.lang))}[/b]  "
            f"[$text-muted]({self._w('section')} {escape(le.seed_section)})[/]\n\n"
            f"[b]{self._w('claim')}:[/b] {escape(_text(le.claim, self.lang))}\n\n"
            f"[b]{self._w('explain')}:[/b] {escape(_text(le.explain, self.lang))}"
        )
        how = "run" if le.view in LIVE_VIEWS else "run_after"
        status.update(escape(self.status or self._w(how).format(view=le.view)))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.status = ""
        self._show_lesson()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        le = self.current()
        if le is None or self.prefix is None or self._trigger is None:
            return
        self.status = self._w("running")
        self._show_lesson()
        live = le.view in LIVE_VIEWS and self._on_view is not None
        if live and self._on_view is not None:
            self._on_view(le)  # watching first; this screen stays below it, its worker runs on
        self.run_lesson(le, self.lead_s if live else 0.0, live)

    @work(thread=True, exclusive=True, group="lesson", exit_on_error=False)
    def run_lesson(self, lesson: Lesson, lead_s: float = 0.0, opened: bool = False) -> None:
        assert self._trigger is not None and self.prefix is not None
        if lead_s > 0:
            time.sleep(lead_s)
        out = self._trigger(self.prefix, lesson.name)
        self.post_message(LessonRan(lesson, out, opened))

    @on(LessonRan)
    def _ran(self, message: LessonRan) -> None:
        first = message.output.strip().splitlines()
        self.status = first[0] if first else ""
        self._show_lesson()
        if message.opened:
            if self.status:  # said over the view that is watching it
                self.app.notify(self.status, title=_text(message.lesson.title, self.lang))
        elif self._on_view is not None:
            self._on_view(message.lesson)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "lesson":
            return
        event.stop()
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            text = str(err).strip().splitlines()[0] if err is not None and str(err).strip() else ""
            self.status = f"the experiment failed: {text or type(err).__name__}"
            self._show_lesson()
            if self.app.screen is not self:  # the view opened first is on top: say it there
                self.app.notify(self.status, severity="error")

    def action_toggle_lang(self) -> None:
        self.lang = "vi" if self.lang == "en" else "en"
        self._render_all()
