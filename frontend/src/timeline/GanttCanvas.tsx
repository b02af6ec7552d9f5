import { useEffect, useImperativeHandle, useMemo, useRef, type Ref } from "react";
import { useComputedColorScheme } from "@mantine/core";

/** Bars as columns (typed arrays): lane, start and end (ms), and a style index per bar. */
export type GanttData = {
  n: number;
  lane: Uint32Array;
  start: Float64Array;
  end: Float64Array;
  style: Uint8Array;
};

/** A fill colour and its opacity. */
export type GanttStyle = { fill: string; alpha: number };

/** The plot area inside the canvas (px): room for lane names left, the time axis and the
 * overview strip below (the same margins the ECharts version had, which the e2e test uses). */
export const GRID = { left: 140, right: 24, top: 16, bottom: 72 };
const MIN_SPAN_MS = 20;

export function toGantt(rows: readonly (readonly unknown[])[], styleOf: (row: readonly unknown[]) => number): GanttData {
  const n = rows.length;
  const d: GanttData = { n, lane: new Uint32Array(n), start: new Float64Array(n), end: new Float64Array(n), style: new Uint8Array(n) };
  rows.forEach((r, i) => {
    d.lane[i] = Number(r[0]);
    d.start[i] = Number(r[1]);
    d.end[i] = Number(r[2]);
    d.style[i] = styleOf(r);
  });
  return d;
}

/** Draw order: bar indexes sorted by style, then lane, then start, so one path per style is
 * filled per frame and neighbours in a lane can be merged when they fall on the same pixels. */
export function drawOrder(d: GanttData): Uint32Array {
  const o = new Uint32Array(d.n);
  for (let i = 0; i < d.n; i++) o[i] = i;
  o.sort((a, b) => d.style[a] - d.style[b] || d.lane[a] - d.lane[b] || d.start[a] - d.start[b]);
  return o;
}

/** The rectangles (x, width) of a run of bars of one style and lane at a scale: bars closer than
 * half a pixel become one rectangle, so a zoomed-out lane of thousands of bars costs a handful of
 * path segments (level of detail) and paints exactly what the bars would. */
export function mergeSpans(starts: number[], ends: number[], lo: number, scale: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < starts.length; i++) {
    const x0 = (starts[i] - lo) * scale;
    const x1 = Math.max(x0 + 1, (ends[i] - lo) * scale);
    const last = out[out.length - 1];
    if (last && x0 <= last[0] + last[1] + 0.5) last[1] = Math.max(last[1], x1 - last[0]);
    else out.push([x0, x1 - x0]);
  }
  return out;
}

/** Time-axis step (ms) giving labels at least `minPx` apart. */
export function tickStep(spanMs: number, widthPx: number, minPx = 90): number {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5,
    18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];
  for (const s of steps) if ((s / spanMs) * widthPx >= minPx) return s;
  return steps[steps.length - 1];
}

function tickLabel(ms: number, step: number): string {
  const d = new Date(ms);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  if (step >= 864e5) return d.toLocaleDateString();
  if (step >= 6e4) return hm;
  const s = `${hm}:${String(d.getSeconds()).padStart(2, "0")}`;
  return step >= 1e3 ? s : `${s}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export type GanttHandle = {
  /** Zoom around the middle of the view (factor < 1 zooms in). */
  zoom(factor: number): void;
  /** Back to the whole extent. */
  reset(): void;
};

/** A Gantt chart on one canvas, drawn outside React: zoom (wheel, +/-) and pan (drag) only move
 * a view kept in a ref and request one repaint per animation frame; a repaint fills one path per
 * style over typed arrays (no per-bar objects), merging bars that share pixels. React renders
 * only when the data, the size or the cursor change. */
export function GanttCanvas({ data, lanes, styles, extent, height, label, cursor, onPick, describe, handle }: {
  data: GanttData;
  lanes: string[];
  styles: GanttStyle[];
  extent: [number, number];
  height: number;
  label: string;
  /** A bar to outline and keep in view (the keyboard cursor). */
  cursor: number | null;
  onPick: (index: number) => void;
  /** The tooltip's text for a bar. */
  describe: (index: number) => string;
  handle?: Ref<GanttHandle>;
}) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const tip = useRef<HTMLDivElement>(null);
  const view = useRef<[number, number]>([extent[0], extent[1]]);
  const frame = useRef<number | null>(null);
  const hover = useRef<{ x: number; y: number } | null>(null);
  const dark = useComputedColorScheme("light") === "dark";
  const order = useMemo(() => drawOrder(data), [data]);
  // Per lane, its bars by start: what a click or hover searches.
  const byLane = useMemo(() => {
    const out: number[][] = Array.from({ length: lanes.length }, () => []);
    for (let i = 0; i < data.n; i++) out[data.lane[i]]?.push(i);
    for (const l of out) l.sort((a, b) => data.start[a] - data.start[b]);
    return out;
  }, [data, lanes.length]);
  // The latest props for the drawing code, which runs outside React's render.
  const props = useRef({ data, lanes, styles, order, byLane, cursor, dark, extent, onPick, describe });
  props.current = { data, lanes, styles, order, byLane, cursor, dark, extent, onPick, describe };

  function geometry() {
    const c = canvas.current!;
    const w = c.clientWidth;
    const h = c.clientHeight;
    const plot = { x: GRID.left, y: GRID.top, w: Math.max(1, w - GRID.left - GRID.right), h: Math.max(1, h - GRID.top - GRID.bottom) };
    const laneH = plot.h / Math.max(1, props.current.lanes.length);
    const barH = Math.min(22, laneH * 0.6);
    const [lo, hi] = view.current;
    return { w, h, plot, laneH, barH, lo, hi, scale: plot.w / Math.max(1, hi - lo) };
  }

  function hit(x: number, y: number): number | null {
    const { plot, laneH, barH, lo, scale } = geometry();
    const { data: d, byLane: lanesIdx } = props.current;
    if (x < plot.x || x > plot.x + plot.w || y < plot.y || y > plot.y + plot.h) return null;
    const lane = Math.floor((y - plot.y) / laneH);
    const mid = plot.y + lane * laneH + laneH / 2;
    if (Math.abs(y - mid) > barH / 2 + 2) return null;
    const t = lo + (x - plot.x) / scale;
    const tol = 3 / scale;
    let best: number | null = null;
    for (const i of lanesIdx[lane] ?? []) {
      if (d.start[i] - tol > t) break;
      if (d.end[i] + tol < t) continue;
      // the shortest bar under the pointer: a long one does not hide the short ones on it
      if (best === null || d.end[i] - d.start[i] < d.end[best] - d.start[best]) best = i;
    }
    return best;
  }

  function draw() {
    frame.current = null;
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const { w, h, plot, laneH, barH, lo, hi, scale } = geometry();
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext("2d");
    if (!ctx) return;
    const { data: d, lanes: names, styles: st, order: o, cursor: cur, dark: isDark, extent: ext } = props.current;
    const text = isDark ? "#c9c9c9" : "#495057";
    const grid = isDark ? "#373a40" : "#e9ecef";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    // the view in the DOM, for tests and bench/timeline_render.py (no style depends on it)
    c.dataset.viewFrom = String(Math.round(lo));
    c.dataset.viewTo = String(Math.round(hi));
    ctx.font = "12px system-ui, sans-serif";
    ctx.lineWidth = 1;
    // lanes: separators and names
    ctx.fillStyle = text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.beginPath();
    names.forEach((name, l) => {
      const y = plot.y + l * laneH;
      ctx.moveTo(plot.x, Math.round(y) + 0.5);
      ctx.lineTo(plot.x + plot.w, Math.round(y) + 0.5);
      const shown = name.length > 20 ? `${name.slice(0, 19)}…` : name;
      ctx.fillText(shown, plot.x - 8, y + laneH / 2);
    });
    ctx.moveTo(plot.x, plot.y + plot.h + 0.5);
    ctx.lineTo(plot.x + plot.w, plot.y + plot.h + 0.5);
    // time axis
    const step = tickStep(hi - lo, plot.w);
    // ticks on local-time multiples of the step: local = t - offset (UTC+2: offset -120 min)
    const off = new Date(lo).getTimezoneOffset() * 60_000;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil((lo - off) / step) * step + off; t <= hi; t += step) {
      const x = Math.round(plot.x + (t - lo) * scale) + 0.5;
      ctx.moveTo(x, plot.y);
      ctx.lineTo(x, plot.y + plot.h + 4);
      ctx.fillText(tickLabel(t, step), x, plot.y + plot.h + 8);
    }
    ctx.strokeStyle = grid;
    ctx.stroke();
    // bars: one path per style; in a lane, bars that meet within half a pixel are one rect
    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x, plot.y, plot.w, plot.h);
    ctx.clip();
    let k = 0;
    while (k < d.n) {
      const s = d.style[o[k]];
      ctx.beginPath();
      let runLane = -1;
      let rx = 0;
      let rw = 0;
      for (; k < d.n && d.style[o[k]] === s; k++) {
        const i = o[k];
        const a = d.start[i];
        const b = d.end[i];
        if (b < lo || a > hi) continue;
        const lane = d.lane[i];
        const x0 = plot.x + (Math.max(a, lo - 1) - lo) * scale;
        const x1 = Math.max(x0 + 1, plot.x + (Math.min(b, hi + 1) - lo) * scale);
        if (lane === runLane && x0 <= rx + rw + 0.5) {
          rw = Math.max(rw, x1 - rx);
          continue;
        }
        if (runLane >= 0) ctx.rect(rx, plot.y + runLane * laneH + (laneH - barH) / 2, rw, barH);
        runLane = lane;
        rx = x0;
        rw = x1 - x0;
      }
      if (runLane >= 0) ctx.rect(rx, plot.y + runLane * laneH + (laneH - barH) / 2, rw, barH);
      ctx.fillStyle = st[s]?.fill ?? "#868e96";
      ctx.globalAlpha = st[s]?.alpha ?? 1;
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (cur !== null && cur < d.n) {
      const x0 = plot.x + (d.start[cur] - lo) * scale;
      const x1 = Math.max(x0 + 1, plot.x + (d.end[cur] - lo) * scale);
      ctx.strokeStyle = isDark ? "#ffffff" : "#000000";
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 - 2, plot.y + d.lane[cur] * laneH + (laneH - barH) / 2 - 2, x1 - x0 + 4, barH + 4);
    }
    ctx.restore();
    // overview strip: the whole extent, the part in view highlighted
    const oy = h - 28;
    const full = Math.max(1, ext[1] - ext[0]);
    ctx.fillStyle = grid;
    ctx.fillRect(plot.x, oy, plot.w, 12);
    const vx0 = plot.x + Math.max(0, (lo - ext[0]) / full) * plot.w;
    const vx1 = plot.x + Math.min(1, (hi - ext[0]) / full) * plot.w;
    ctx.fillStyle = isDark ? "#5c7cfa" : "#4c6ef5";
    ctx.globalAlpha = 0.6;
    ctx.fillRect(vx0, oy, Math.max(2, vx1 - vx0), 12);
    ctx.globalAlpha = 1;
    // tooltip: the hovered bar, else the cursor's
    const at = hover.current ? hit(hover.current.x, hover.current.y) : null;
    const shown = at ?? cur;
    const t = tip.current;
    if (t) {
      if (shown === null || shown >= d.n || d.end[shown] < lo || d.start[shown] > hi) {
        t.style.display = "none";
      } else {
        t.style.display = "block";
        t.textContent = props.current.describe(shown);
        const x = at !== null && hover.current ? hover.current.x : plot.x + (Math.max(d.start[shown], lo) - lo) * scale;
        const y = plot.y + d.lane[shown] * laneH + (laneH + barH) / 2 + 6;
        t.style.left = `${Math.min(Math.max(0, x), w - 260)}px`;
        t.style.top = `${Math.min(y, h - 60)}px`;
      }
    }
  }

  function requestDraw() {
    if (frame.current === null) frame.current = requestAnimationFrame(draw);
  }

  function setView(lo: number, hi: number) {
    const [e0, e1] = props.current.extent;
    const pad = (e1 - e0) * 0.5;
    let span = Math.max(MIN_SPAN_MS, Math.min(hi - lo, e1 - e0 + 2 * pad));
    if (!Number.isFinite(span)) span = e1 - e0;
    let a = Math.max(e0 - pad, Math.min(lo, e1 + pad - span));
    if (hi - lo < MIN_SPAN_MS) a = (lo + hi) / 2 - span / 2;
    view.current = [a, a + span];
    requestDraw();
  }

  useImperativeHandle(handle, () => ({
    zoom(factor: number) {
      const [lo, hi] = view.current;
      const mid = (lo + hi) / 2;
      setView(mid - ((hi - lo) * factor) / 2, mid + ((hi - lo) * factor) / 2);
    },
    reset() {
      setView(props.current.extent[0], props.current.extent[1]);
    },
  }));

  // New data or extent: show the extent.
  useEffect(() => {
    view.current = [extent[0], extent[1]];
    requestDraw();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [extent[0], extent[1], data]);

  // The keyboard cursor stays in view.
  useEffect(() => {
    if (cursor !== null && cursor < data.n) {
      const [lo, hi] = view.current;
      const a = data.start[cursor];
      const b = data.end[cursor];
      if (b < lo || a > hi) setView(a - (hi - lo) / 2, a + (hi - lo) / 2);
    }
    requestDraw();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [cursor, dark, styles, lanes]);

  useEffect(() => {
    const c = canvas.current!;
    const ro = new ResizeObserver(() => requestDraw());
    ro.observe(c);
    // Wheel zooms around the pointer; a native listener, since React's is passive and the page
    // would scroll too.
    const wheel = (e: WheelEvent) => {
      const { plot, lo, hi, scale } = geometry();
      const r = c.getBoundingClientRect();
      const x = e.clientX - r.left;
      if (x < plot.x || x > plot.x + plot.w) return;
      e.preventDefault();
      const t = lo + (x - plot.x) / scale;
      const f = Math.exp(Math.max(-1, Math.min(1, e.deltaY * 0.002)));
      setView(t - (t - lo) * f, t + (hi - t) * f);
    };
    let drag: { x: number; lo: number; hi: number; moved: boolean; id: number } | null = null;
    const local = (e: PointerEvent) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    const down = (e: PointerEvent) => {
      if (e.button !== 0) return;
      const [lo, hi] = view.current;
      drag = { x: e.clientX, lo, hi, moved: false, id: e.pointerId };
      c.setPointerCapture(e.pointerId);
    };
    const move = (e: PointerEvent) => {
      hover.current = local(e);
      if (drag) {
        const dx = e.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          const ms = (dx / geometry().plot.w) * (drag.hi - drag.lo);
          setView(drag.lo - ms, drag.hi - ms);
          return;
        }
      }
      c.style.cursor = hit(hover.current.x, hover.current.y) !== null ? "pointer" : drag ? "grabbing" : "grab";
      requestDraw();
    };
    const up = (e: PointerEvent) => {
      if (!drag) return;
      const moved = drag.moved;
      c.releasePointerCapture(drag.id);
      drag = null;
      if (!moved) {
        const p = local(e);
        const i = hit(p.x, p.y);
        if (i !== null) props.current.onPick(i);
      }
    };
    const leave = () => {
      hover.current = null;
      requestDraw();
    };
    const dbl = () => setView(props.current.extent[0], props.current.extent[1]);
    c.addEventListener("wheel", wheel, { passive: false });
    c.addEventListener("pointerdown", down);
    c.addEventListener("pointermove", move);
    c.addEventListener("pointerup", up);
    c.addEventListener("pointerleave", leave);
    c.addEventListener("dblclick", dbl);
    return () => {
      ro.disconnect();
      c.removeEventListener("wheel", wheel);
      c.removeEventListener("pointerdown", down);
      c.removeEventListener("pointermove", move);
      c.removeEventListener("pointerup", up);
      c.removeEventListener("pointerleave", leave);
      c.removeEventListener("dblclick", dbl);
      if (frame.current !== null) cancelAnimationFrame(frame.current);
      frame.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <div ref={wrap} role="img" aria-label={label} style={{ position: "relative" }}>
      <canvas ref={canvas} style={{ width: "100%", height, display: "block", touchAction: "none" }} />
      <div
        ref={tip}
        aria-hidden="true"
        style={{
          position: "absolute", display: "none", pointerEvents: "none", maxWidth: 260, padding: "4px 8px",
          fontSize: 12, borderRadius: 4, whiteSpace: "pre-line",
          background: dark ? "#25262b" : "#ffffff", color: dark ? "#c9c9c9" : "#212529",
          boxShadow: "0 1px 4px rgba(0,0,0,.3)",
        }}
      />
    </div>
  );
}
