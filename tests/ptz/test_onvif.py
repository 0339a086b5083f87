"""The ONVIF driver against a real third-party ONVIF device (ipycam): move, stop, presets, home, faults."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.ptz.onvif_camera import OnvifPtz
from bot.ptz_control import PtzError
from tests.onvif_support import PASSWORD, USER, Device, onvif_device


@pytest.fixture(scope="module")
def device() -> Device:
    with onvif_device() as d:
        yield d


async def test_moves_stops_goes_to_presets_and_home(device: Device) -> None:
    cam = OnvifPtz(device.url, USER, PASSWORD, home_preset="home", timeout=10)
    try:
        assert ("scene", "Scène") in await cam.presets()
        await cam.move(0.8, 0.0, 0.0)
        await asyncio.sleep(0.2)
        await cam.stop()
        pan, _, _ = device.position()
        assert pan > 0, "the continuous move turned the dome"
        await asyncio.sleep(0.1)
        assert device.position()[0] == pan, "and Stop stopped it"
        await cam.goto_preset("scene")
        assert device.position() == (0.4, -0.2, 0.5)
        await cam.home()
        assert device.position() == (0.0, 0.0, 0.0)
    finally:
        await cam.close()


async def test_a_wrong_password_is_a_clear_error(device: Device) -> None:
    cam = OnvifPtz(device.url, USER, "not-the-password", timeout=10)
    with pytest.raises(PtzError):
        await cam.home()
    await cam.close()


async def test_a_camera_that_never_answers_fails_within_its_timeout() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        cam = OnvifPtz(f"http://127.0.0.1:{silent.getsockname()[1]}", USER, PASSWORD, timeout=0.5)
        with pytest.raises(PtzError, match="no answer within 0.5 s"):
            await cam.stop()
        await cam.close()
    finally:
        silent.close()
