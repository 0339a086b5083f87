"""Live figures against the design's performance targets, in a real browser and a real bot process, beside their baselines.

    .venv/bin/python -m bench.media.bench_live [--cameras 20] [--viewers 10] [--opens 10]
        [--minutes 2] [--source farm|synthetic]

One command, one run, one table (about 20 minutes by default; ``--minutes 30`` for the soak
that gives the memory drift). On the farm each camera also publishes a 320x180 substream
(``/subK``), given to the bot as ``substream_url``; a third phase measures the page mosaic's
CPU per refresh (bench_mosaic.py: main streams before and after the decode budget, and
substreams).

Cameras: the GStreamer RTSP farm (tests/media/farm.py, 1080p25 at ~4 Mbit/s, GOP 2 s) when
Debian's packages are there, else synthetic cameras in the bot. Two phases:

1. Browser (the bot in this process, Debian's headless Chromium at 390x844):
   - link opened → first picture: the link of a signed-in viewer is opened (303 to the page),
     time from the navigation's start to the first mosaic drawn (``performance.now()`` at the
     image's load event). Baseline: one ``GET /live/api/mosaic.jpg`` from an aiohttp client.
   - tap → first video frame: from the tap (the player's ``open()``) to the first frame the
     compositor presents (``requestVideoFrameCallback``). Baseline: an aiohttp client's
     WebSocket connect → first fMP4 fragment (the server's share of the wait).
   - live lag: for each frame shown, its presentation time (rVFC ``expectedDisplayTime``, on
     the epoch clock through ``performance.timeOrigin``) minus the time the bot received that
     access unit from the camera (``AccessUnit.received``, on the same machine's clock). The
     frame is matched by its timestamp: the fragments carry the camera's 90 kHz timestamps,
     so ``mediaTime * 90000`` is the access unit's pts. This measures Vigie's whole share
     (relay, WebSocket, MSE buffering, decode, display); it leaves out the camera's encoder and
     the network before the bot, which Vigie cannot change. Baseline: receipt → arrival of the
     same fragment at an aiohttp client (the relay alone).
2. Soak (the bot as its own process, ``bench.media.live_bot``): CPU with no viewer and no
   incident over 30 s, then with an incident open over 90 s (the room tiles, every 30 s); the
   CPU per viewer as the slope of the bot's CPU time (/proc) over 0, ``--viewers`` and twice
   as many WebSocket viewers (one camera each, polling the state like the page), ``--reps``
   repetitions (5), median, and beside it what the slope is made of: the first viewer's fixed
   part (the relay's clock) and what one more viewer adds; the same with every viewer on one camera (the fan-out alone, without
   the work an own camera adds: its frames handed over and written into fragments); then ``--viewers`` viewers for ``--minutes``: resident memory (VmRSS)
   sampled every 15 s, its trend after the first minute (drift), CPU over the soak.
   Baselines: the RSS of the same process before any viewer, and the demux-only floor of the
   same cameras measured in this process (PyAV threads doing nothing but receive).

Nothing here asserts: each figure is printed beside its design target and its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.media.bench_media import bench_farm, demux_only, phase  # noqa: E402
from bench.media.bench_mosaic import mosaic_cpu, summary  # noqa: E402
from bot.media.hls import decode_time  # noqa: E402
from bot.media.service import MediaOptions  # noqa: E402
from bot.media.units import CLOCK_RATE, AccessUnit  # noqa: E402
from tests.media.conftest import farm_available  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.web.support import AGENT, Cam, LiveApp, cookie, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TILE_PERIOD = 30.0  # s, the room tiles' interval (Settings.tile_interval_seconds' default, live_bot's incident)
T = TypeVar("T")
RVFC = """() => {
  const v = document.getElementById('player-video');
  window.__frames = [];
  const cb = (now, meta) => {
    window.__frames.push([meta.mediaTime, performance.timeOrigin + meta.expectedDisplayTime]);
    v.requestVideoFrameCallback(cb);
  };
  v.requestVideoFrameCallback(cb);
}"""


@dataclass
class Row:
    name: str
    value: str
    target: str
    baseline: str


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms (n={len(values)})" if values else "n/a"


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))] if values else float("nan")


class Receipts:
    """When the bot received each access unit of a camera, on the epoch clock."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}

    def __call__(self, au: AccessUnit) -> None:  # the camera's reader thread
        self.at[au.pts] = time.time() - (time.monotonic() - au.received)

    def lag(self, pts: int, shown: float) -> float | None:
        when = self.at.get(pts)
        if when is None:  # rounding of mediaTime: the nearest frame within half a frame
            near = min(self.at, key=lambda p: abs(p - pts), default=None)
            if near is None or abs(near - pts) > CLOCK_RATE // 50:
                return None
            when = self.at[near]
        return shown - when


async def wait_js(page: Any, expression: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        await asyncio.sleep(0.02)


async def server_baselines(app: LiveApp, link: str, cams: list[Cam], opens: int,
                           receipts: Receipts) -> tuple[list[float], list[float], list[float]]:
    first, mosaic, relay_lag = [], [], []
    async with aiohttp.ClientSession() as s:
        ck = await app.login(s, link)
        ws_base = app.base.replace("http", "ws")
        for i in range(opens):
            t = time.perf_counter()
            async with s.get(f"{app.base}/live/api/mosaic.jpg", headers=cookie(ck)) as r:
                await r.read()
            mosaic.append(time.perf_counter() - t)
            t = time.perf_counter()
            async with s.ws_connect(f"{ws_base}/live/api/cam/{cams[i % len(cams)].id}/ws", headers=cookie(ck)) as ws:
                await ws.receive_str()  # the quality served
                await ws.receive_str()  # the MIME type
                await ws.receive_bytes()  # init segment
                await ws.receive_bytes()  # first fragment: the cached keyframe
                first.append(time.perf_counter() - t)
        async with s.ws_connect(f"{ws_base}/live/api/cam/{cams[0].id}/ws", headers=cookie(ck)) as ws:
            end = time.monotonic() + 6
            while time.monotonic() < end:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                arrived = time.time()
                pts = decode_time(msg.data)
                # the first GOP is the cached one, sent at once: lag is measured on live frames
                if pts is not None and time.monotonic() > end - 4 and (lag := receipts.lag(pts, arrived)) is not None:
                    relay_lag.append(lag)
    return first, mosaic, relay_lag


async def browser_phase(cams: list[Cam], opens: int, rows: list[Row], options: MediaOptions) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="vigie-bench-") as tmp:
        app = await LiveApp(Path(tmp), cams, options=options).start()
        try:
            took = await app.online(timeout=60)
            print(f"browser phase: {len(cams)} cameras online after {took:.1f} s", flush=True)
            _, link = await app.alert()
            receipts = Receipts()
            app.media.hub[cams[0].id].attach(receipts)
            sub_receipts = Receipts()
            sub = app.media.substream(cams[0].id)
            if sub is not None:
                sub.attach(sub_receipts)
            base_first, base_mosaic, relay_lag = await server_baselines(app, link, cams, opens, receipts)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3,
                                                    is_mobile=True, has_touch=True)
                page = await context.new_page()
                await page.goto(link)
                await page.fill("#person", AGENT)
                await page.fill("#password", app.passwords[AGENT])
                await page.click("button[type=submit]")
                await page.wait_for_url("**/live/view")
                first_picture, first_frame = [], []
                for _ in range(opens):
                    await page.goto(link)  # signed in: 303 to the page
                    await wait_js(page, "document.getElementById('mosaic').hasAttribute('data-first-ms')")
                    first_picture.append(int(await page.get_attribute("#mosaic", "data-first-ms") or 0) / 1000)
                for i in range(opens):
                    await page.click(f"#grid .cam[data-camera='{cams[i % len(cams)].id}']")
                    await wait_js(page, "document.getElementById('player').hasAttribute('data-first-frame-ms')")
                    first_frame.append(int(await page.get_attribute("#player", "data-first-frame-ms") or 0) / 1000)
                    await page.click("#player-close")
                await page.click(f"#grid .cam[data-camera='{cams[0].id}']")
                await wait_js(page, "document.getElementById('player').getAttribute('data-state') === 'playing'")
                # each quality forced with the player's button (Auto → HD → Éco), measured apart:
                # a substream has its own timeline, matched against its own receipts
                played: dict[str, tuple[list[list[float]], int]] = {}
                for quality in ("hd", "saver"):
                    await page.click("#player-quality")
                    await wait_js(page, f"document.getElementById('player').getAttribute('data-quality') === "
                                        f"'{quality}' && !document.getElementById('player-video').paused")
                    await asyncio.sleep(3)  # past the cached GOP and the jump to the live edge
                    await page.evaluate(RVFC)
                    await asyncio.sleep(10)
                    played[quality] = (await page.evaluate("window.__frames"), await page.evaluate(
                        "document.getElementById('player-video').getVideoPlaybackQuality().droppedVideoFrames"))
                await browser.close()
            rows.append(Row("link opened → first picture (mosaic), median", ms(first_picture), "≤ 0.5 s",
                            f"GET mosaic.jpg {ms(base_mosaic)}"))
            rows.append(Row("tap → first video frame, median", ms(first_frame), "≤ 0.5 s",
                            f"WS connect → keyframe {ms(base_first)}"))
            for quality, (frames, dropped) in played.items():
                got = receipts if quality == "hd" else sub_receipts
                seen = {round(t * CLOCK_RATE): shown for t, shown in frames}  # one entry per frame
                lags = [lag for pts, shown in seen.items() if (lag := got.lag(pts, shown / 1000)) is not None]
                rows.append(Row(f"live lag {quality} (bot receipt → displayed), median", ms(lags), "≤ 150 ms",
                                f"relay alone {ms(relay_lag)}"))
                rows.append(Row(f"live lag {quality}, p95", f"{p95(lags) * 1000:.0f} ms", "",
                                f"relay alone {p95(relay_lag) * 1000:.0f} ms"))
                rows.append(Row(f"frames shown in 10 s, {quality} (dropped)", f"{len(seen)} ({dropped})", "~250", ""))
        finally:
            await app.stop()


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proc_shared_mb(pid: int) -> float:
    """What of the RSS is file pages (libraries) also mapped by another process: counted whole in
    the RSS, though this bench's own process (same libav, aiohttp…) brought many of them in."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Shared_Clean:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def viewer(s: aiohttp.ClientSession, base: str, ck: str, camera: str, stop: asyncio.Event,
                 counts: list[int]) -> None:
    ws_base = base.replace("http", "ws")
    async with s.ws_connect(f"{ws_base}/live/api/cam/{camera}/ws", headers=cookie(ck)) as ws:

        async def poll() -> None:  # what the page does beside the video (app.js: the access state
            # every 5 s; the camera list is not polled while the full-screen player is open)
            while not stop.is_set():
                async with s.get(base + "/live/api/state", headers=cookie(ck)) as r:
                    await r.read()
                await asyncio.sleep(5)

        poller = asyncio.create_task(poll())
        try:
            while not stop.is_set():
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    counts[0] += len(msg.data)
                elif msg.type != aiohttp.WSMsgType.TEXT:
                    return
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)


class Viewers:
    """WebSocket viewers of the soaked bot, one camera each (viewer i on camera i mod n), added and removed."""

    def __init__(self, s: aiohttp.ClientSession, base: str, cookies: list[str], cameras: int) -> None:
        self._s, self._base, self._cookies, self._cameras = s, base, cookies, cameras
        self._running: list[tuple[asyncio.Task[None], asyncio.Event]] = []
        self.counts = [0]

    @property
    def count(self) -> int:
        """Viewers connected now."""
        return len(self._running)

    async def set(self, n: int) -> None:
        while len(self._running) < n:
            i, stop = len(self._running), asyncio.Event()
            task = asyncio.create_task(viewer(self._s, self._base, self._cookies[i], f"cam{i % self._cameras + 1}",
                                              stop, self.counts))
            self._running.append((task, stop))
        while len(self._running) > n:
            task, stop = self._running.pop()
            stop.set()
            await asyncio.gather(task, return_exceptions=True)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


async def cpu_over(pid: int, seconds: float) -> float:
    """The process's CPU (user + system, from /proc) over `seconds`, in % of a core."""
    c0, w0 = proc_cpu(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (proc_cpu(pid) - c0) / (time.monotonic() - w0) * 100


@dataclass(frozen=True)
class ViewerCost:
    """One repetition of the per-viewer measure: the bot's CPU (% of a core) at each level."""

    points: tuple[tuple[float, float], ...]  # (viewers, CPU), in the order measured

    @property
    def per_viewer(self) -> float:
        """The headline: the least-squares slope over all the levels."""
        return slope(list(self.points))

    def _at(self, n: float) -> float:
        return statistics.fmean(c for v, c in self.points if v == n)

    @property
    def marginal(self) -> float:
        """What one more viewer adds once some watch: the slope between the two highest levels."""
        top = sorted({v for v, _ in self.points})[-2:]
        return (self._at(top[1]) - self._at(top[0])) / (top[1] - top[0])

    @property
    def first(self) -> float:
        """What starts with the first viewer whatever their number (the relay's clock, the
        first camera handed over): the lowest level with viewers, less its viewers at the
        marginal cost, less no viewer."""
        levels = sorted({v for v, _ in self.points})
        return self._at(levels[1]) - self._at(levels[0]) - (levels[1] - levels[0]) * self.marginal


async def per_viewer_cpu(pid: int, viewers: Viewers, counts: tuple[int, ...], reps: int) -> list[ViewerCost]:
    """CPU per added viewer, one measure per repetition: the process's CPU at 0, 10, 20
    viewers (``at_levels``), each level measured over ``TILE_PERIOD``. The window is the room
    tiles' period: the open incident renders its tiles every 30 s (0.1-0.5 s of CPU each on the
    farm), so every window holds one run;
    over 20 s some held one and some none, a difference of 0.5-2.5 % of a core in a level, up
    to 0.1 % per viewer at 20 viewers. What remains is the ingest's own jitter (~1 % of a core
    between windows, ±0.06 per viewer in one repetition), hence the median of the repetitions.
    The bot's own CPU time is what is counted, so other processes on a shared machine only
    disturb it through caches and scheduling."""
    runs = await at_levels(viewers, counts, reps, lambda: cpu_over(pid, TILE_PERIOD))
    return [ViewerCost(tuple((float(n), cpu) for n, cpu in run)) for run in runs]


async def at_levels(viewers: Viewers, counts: tuple[int, ...], reps: int,
                    measure: Callable[[], Awaitable[T]]) -> list[list[tuple[int, T]]]:
    """``measure()`` at each number of viewers in ``counts``, ``reps`` times, each after 5 s to
    settle (the cached GOP's burst); the order alternates between repetitions so a trend of
    the machine's load does not read as a cost. One list of (viewers, measure) per repetition,
    in the order measured; the viewers are all gone at the end."""
    runs: list[list[tuple[int, T]]] = []
    for rep in range(reps):
        run = []
        for n in counts if rep % 2 == 0 else tuple(reversed(counts)):
            await viewers.set(n)
            await asyncio.sleep(5)
            run.append((n, await measure()))
        runs.append(run)
    await viewers.set(0)
    return runs


def cost_rows(name: str, costs: list[ViewerCost], target: str) -> list[Row]:
    """The headline (slope) and what it is made of (the first viewer's fixed part, the marginal
    viewer), medians of the repetitions, each repetition's figure beside."""
    def each(values: list[float]) -> str:
        return "reps " + ", ".join(f"{v:.3f}" for v in values)
    per = [c.per_viewer for c in costs]
    first = [c.first for c in costs]
    marginal = [c.marginal for c in costs]
    return [
        Row(f"{name}, median of {len(costs)}", f"{statistics.median(per):+.3f} % of a core", target, each(per)),
        Row("  of which: the first viewer's fixed part (once, not per viewer)",
            f"{statistics.median(first):+.2f} % of a core", "", each(first)),
        Row("  of which: one more viewer (slope between the two highest levels)",
            f"{statistics.median(marginal):+.3f} % of a core", "", each(marginal)),
    ]


@contextlib.asynccontextmanager
async def live_bot(args: list[str]) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """The bot as its own process (live_bot.py), yielded once its cameras are online with its base
    URL; stopped by the end of its input (a clean stop), killed if it does not stop."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.media.live_bot", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)  # cameras online
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def sign_in(s: aiohttp.ClientSession, info: dict[str, Any], count: int) -> list[str]:
    """``count`` viewer sessions of the person the bot printed for its incident, by password."""
    cookies = []
    for _ in range(count):
        async with s.post(str(info["link"]), data={"person": info["person"], "password": info["password"]},
                          allow_redirects=False) as r:
            cookies.append(r.cookies["vigie_session"].value)
    return cookies


async def soak_phase(urls: list[str], sub_urls: list[str], synthetic: int, viewers: int, minutes: float,
                     rows: list[Row], floor: float | None, options: MediaOptions, reps: int,
                     spread: int = 0) -> None:
    args = ["--urls", ",".join(urls), "--subs", ",".join(sub_urls)] if urls else ["--synthetic", str(synthetic)]
    args += ["--relay-window", str(options.relay_window)]
    async with live_bot(args) as (proc, base):
        assert proc.stdout is not None and proc.stdin is not None
        await asyncio.sleep(5)
        idle = await cpu_over(proc.pid, 30)
        rss_idle = proc_rss_mb(proc.pid)
        # an open incident adds the room tiles: a mosaic every 30 s, so two or three in 90 s
        proc.stdin.write(b"alert\n")
        proc.stdin.flush()
        info = json.loads(await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30))
        tiles = await cpu_over(proc.pid, 90) - idle
        n = len(urls) or synthetic
        levels = (0, viewers, 2 * viewers)
        async with aiohttp.ClientSession() as s:
            cookies = await sign_in(s, info, max(levels))
            # the same viewers all on one camera: the fan-out alone, without the per-camera
            # work (its frames handed over and written into fragments) an own camera adds
            shared = await per_viewer_cpu(proc.pid, Viewers(s, base, cookies, 1), levels, reps)
            print("  per viewer, one camera (% of a core, each repetition): "
                  + ", ".join(f"{c.per_viewer:.3f} {c.points}" for c in shared), flush=True)
            group = Viewers(s, base, cookies, spread or n)
            per = await per_viewer_cpu(proc.pid, group, levels, reps)
            print("  per viewer (% of a core, each repetition): "
                  + ", ".join(f"{c.per_viewer:.3f} {c.points}" for c in per), flush=True)
            await group.set(viewers)
            await asyncio.sleep(10)
            c0, w0 = proc_cpu(proc.pid), time.monotonic()
            samples: list[tuple[float, float]] = []
            end = w0 + minutes * 60
            while time.monotonic() < end:
                samples.append((time.monotonic() - w0, proc_rss_mb(proc.pid)))
                print(f"  soak {samples[-1][0] / 60:4.1f} min: RSS {samples[-1][1]:.0f} MB, "
                      f"{group.counts[0] / 1e6:.0f} MB sent to viewers", flush=True)
                await asyncio.sleep(min(15, max(0.1, end - time.monotonic())))
            busy = (proc_cpu(proc.pid) - c0) / (time.monotonic() - w0) * 100
            rss_end = proc_rss_mb(proc.pid)
            samples.append((time.monotonic() - w0, rss_end))
            await group.set(0)
        after_1min = next((r for t, r in samples if t >= 60), samples[0][1])
        rows.append(Row(f"bot CPU (ingest), {n} cameras + substreams, no viewer", f"{idle:.1f} % of a core",
                        "≤ 1.3 × demux floor", f"floor {floor:.1f} % → {idle / floor:.2f} ×" if floor else "n/a"))
        rows.append(Row("room tiles every 30 s (incident open)", f"+{tiles:.1f} % of a core", "≤ 3 %",
                        "the same bot before the incident"))
        rows.append(Row(f"bot CPU, {n} cameras × {viewers} viewers, over the soak", f"{busy:.1f} % of a core", "",
                        f"no viewer {idle:.1f} %"))
        over = ", ".join(map(str, levels))
        rows += cost_rows(f"CPU per viewer (slope over {over} viewers)", per, "≤ 0.15 %")
        rows += cost_rows("CPU per viewer, all on one camera (fan-out only)", shared, "")
        rows.append(Row(f"RSS after {minutes:g} min, {n} cameras + {viewers} viewers", f"{rss_end:.0f} MB", "≤ 150 MB",
                        f"no viewer {rss_idle:.0f} MB, max {max(r for _, r in samples):.0f} MB, "
                        f"shared libraries {proc_shared_mb(proc.pid):.0f} MB"))
        # drift: the trend of the samples after the first minute (the caches' and the allocator's
        # warm-up), per 10 minutes; and the plain difference minute 1 → end
        steady = [(t, r) for t, r in samples if t >= 60]
        trend = f"{slope(steady) * 600:+.1f} MB / 10 min" if len(steady) >= 3 else "n/a (soak too short)"
        rows.append(Row("RSS drift after minute 1 (trend)", trend, "≤ 1 MB / 10 min",
                        f"minute 1 → end {rss_end - after_1min:+.1f} MB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--opens", type=int, default=10)
    parser.add_argument("--minutes", "--soak-minutes", dest="minutes", type=float, default=2.0,
                        help="soak length with the viewers (30 for the memory drift)")
    parser.add_argument("--source", choices=("farm", "synthetic"), default=None)
    parser.add_argument("--viewer-cameras", type=int, default=0,
                        help="spread the viewers over this many cameras (default: all, one viewer each)")
    parser.add_argument("--phases", default="browser,mosaic,soak",
                        help="which phases to run, comma-separated (the table is whole only with all three)")
    parser.add_argument("--reps", type=int, default=5,
                        help="repetitions of the per-viewer measure (each ~3.5 min for both groups)")
    parser.add_argument("--relay-window", type=float, default=MediaOptions().relay_window,
                        help="how often the relay takes the watched cameras' frames, in seconds (MediaOptions.relay_window)")
    args = parser.parse_args()
    options = MediaOptions(relay_window=args.relay_window)
    phases = set(args.phases.split(","))
    source = args.source or ("farm" if farm_available() is None else "synthetic")
    rows: list[Row] = []
    farm = None
    urls: list[str] = []
    sub_urls: list[str] = []
    floor: float | None = None
    if source == "farm":
        farm = bench_farm(args.cameras)
        urls = [farm.url(i + 1) for i in range(args.cameras)]
        sub_urls = [farm.sub_url(i + 1) for i in range(args.cameras)]
    try:
        cams = [Cam(f"cam{i + 1}", f"Caméra {i + 1}", url, substream_url=sub_urls[i] if sub_urls else None)
                for i, url in enumerate(urls or [None] * args.cameras)]
        if "browser" in phases:
            asyncio.run(browser_phase(cams, args.opens, rows, options))
        if urls and phases & {"mosaic", "soak"}:
            results: dict[str, float] = {}
            phase(results, "floor", urls + sub_urls, 10, demux_only)
            floor = results["floor"]
        if urls and "mosaic" in phases:
            costs = asyncio.run(mosaic_cpu(urls, sub_urls))
            before = statistics.median(costs["main streams, every changed cell (before)"])
            for name, values in costs.items():
                target = "≤ 60 ms" if name == "substreams" else ("≤ 250 ms" if "budget" in name else "")
                ratio = statistics.median(values) / before if before else float("nan")
                rows.append(Row(f"mosaic CPU per 2 s refresh, {name}, median / p95", summary(values), target,
                                f"{ratio:.2f} × before"))
        if "soak" in phases:
            asyncio.run(soak_phase(urls, sub_urls, 0 if urls else args.cameras, args.viewers, args.minutes, rows,
                                   floor, options, reps=args.reps, spread=args.viewer_cameras))
    finally:
        if farm is not None:
            farm.stop()
    print(f"\nsource: {source}, {args.cameras} cameras, relay window {args.relay_window * 1000:g} ms"
          + (" (farm, 1080p25 ~4 Mbit/s)" if urls else " (synthetic)"))
    print(f"{'figure':70} {'measured':>22}  {'target':>16}  baseline (same run)")
    for r in rows:
        print(f"{r.name:70} {r.value:>22}  {r.target:>16}  {r.baseline}")


if __name__ == "__main__":
    main()
