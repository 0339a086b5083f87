"""The shipped systemd unit: rendered, verified by systemd itself, its sandbox scored and measured."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.ops.unit import UnitOptions, render_unit, template

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = shutil.which("systemd-analyze")


def need_analyze() -> str:
    if ANALYZE is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing: scripts/system-deps.sh installs Debian's systemd")
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    return ANALYZE


def rendered(tmp_path: Path) -> Path:
    # verify checks that ExecStart's program exists: point it at this interpreter's vigie (or python)
    exe = Path(sys.executable).with_name("vigie")
    unit = tmp_path / "vigie.service"
    unit.write_text(render_unit(UnitOptions(executable=str(exe if exe.exists() else Path(sys.executable)))),
                    encoding="utf-8")
    return unit


def test_template_has_the_hardening_the_runbook_promises() -> None:
    text = template()
    for line in ("ProtectSystem=strict", "ReadWritePaths=@DATA@", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "UMask=0077", "ProtectHome=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "Restart=on-failure",
                 "TimeoutStopSec=15", "CapabilityBoundingSet=\n"):
        assert line in text + "\n", line
    assert not re.search(r"@[A-Z]+@", render_unit(UnitOptions()))


def test_print_unit_substitutes_and_refuses_unsafe_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["print-unit", "--user", "cctv", "--config-dir", "/srv/vigie/etc", "--data-dir", "/srv/vigie/data"]) == 0
    out = capsys.readouterr().out
    assert "User=cctv\n" in out and "ReadWritePaths=/srv/vigie/data\n" in out
    assert "ExecStart=/opt/vigie/venv/bin/vigie run --config /srv/vigie/etc --log-format json\n" in out
    for bad in (["--user", "root;x"], ["--data-dir", "/var/lib/vi gie"], ["--config-dir", "etc/vigie"],
                ["--data-dir", "/var/lib/%h"], ["--data-dir", "/var/lib/../../etc"]):
        assert main(["print-unit", *bad]) == 2


def test_systemd_verify_passes(tmp_path: Path) -> None:
    analyze = need_analyze()
    unit = rendered(tmp_path)
    r = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_systemd_security_exposure_is_ok(tmp_path: Path) -> None:
    analyze = need_analyze()
    unit = rendered(tmp_path)
    r = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                       text=True, timeout=60)
    m = re.search(r"Overall exposure level for vigie.service: (\d+\.\d+) (\w+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"systemd-analyze security: {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= 2.0 and m.group(2) in ("OK", "SAFE"), r.stdout


# The kernel's own MemoryDenyWriteExecute (prctl PR_SET_MDWE, Linux 6.3+; systemd's seccomp filter
# refuses the same mappings): set it, check it bites, then encode and decode H.264 with PyAV, hash
# an argon2 password, run AES, and import every module the service loads.
PROBE = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(3)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit(4)
except OSError:
    pass
from bot.media.synthetic import encode_loop
from bot.media.tiles import decode_keyframe
from bot.media.units import AccessUnit
loop = encode_loop("cam", width=320, height=180, seconds=1.0)
frame = decode_keyframe(AccessUnit(loop.packets[0][0], 0, True, loop.params, 0, 0.0))
assert frame.width == 320
import bot.__main__, bot.app, nio
from argon2 import PasswordHasher
from Crypto.Cipher import AES
PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x" * 12)
AES.new(b"k" * 16, AES.MODE_CBC, iv=bytes(16)).encrypt(bytes(16))
print("MDWE OK")
"""


def test_pyav_and_the_service_run_with_memory_deny_write_execute() -> None:
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode == 3:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert r.returncode == 0 and "MDWE OK" in r.stdout, r.stdout + r.stderr
