"""The systemd unit shipped with the package (``bot/ops/vigie.service``), rendered for one machine.

The file is a template: ``@USER@``, ``@CONFIG@``, ``@DATA@`` and ``@EXEC@`` are replaced by
``vigie print-unit``; its hardening is explained in the file itself and in docs/operations.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

# systemd splits words on spaces and expands % and $: accept plain absolute paths and user names only.
_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class UnitOptions:
    user: str = "vigie"
    config_dir: str = "/etc/vigie"
    data_dir: str = "/var/lib/vigie"
    executable: str = "/opt/vigie/venv/bin/vigie"

    def problems(self) -> list[str]:
        out = [] if _USER.fullmatch(self.user) else [f"user {self.user!r}: use a system user name such as vigie"]
        for name, value in (("config dir", self.config_dir), ("data dir", self.data_dir),
                            ("executable", self.executable)):
            if not _PATH.fullmatch(value) or ".." in PurePosixPath(value).parts:
                out.append(f"{name} {value!r}: must be an absolute path without spaces, '%' or '$'")
        return out


def template() -> str:
    return resources.files("bot.ops").joinpath("vigie.service").read_text(encoding="utf-8")


def render_unit(options: UnitOptions) -> str:
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    text = template()
    for key, value in (("@USER@", options.user), ("@CONFIG@", options.config_dir), ("@DATA@", options.data_dir),
                       ("@EXEC@", options.executable)):
        text = text.replace(key, value)
    return text
