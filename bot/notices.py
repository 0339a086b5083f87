"""Service notices: what every room is told outside any incident, and recorded in the registre.

An alarm panel gone silent or back, an officer's password being guessed: a plain notice posted
to every room (no link, no incident), and the same words, in French, in the registre. Used by
the desk and, through the composition root, by the access control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .fanout import Fanout
from .kinds import Kind, Recorder
from .messages import Renderer
from .outbox import Post


def announce(registre: Recorder, fanout: Fanout, render: Renderer, kind: Kind, text: Callable[[str], str],
             **details: Any) -> None:
    registre.append(kind, actor="system", details={"text": text("fr"), **details})
    fanout.put(Post(None, kind, lambda lang: render.notice(text, lang)))
