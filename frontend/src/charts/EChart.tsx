import { useEffect, useRef } from "react";
import { useComputedColorScheme } from "@mantine/core";
import { echarts } from "./echarts";
import type { EChartsCoreOption } from "echarts/core";

/** A canvas chart that follows the colour scheme and its container's size. */
export function EChart({ option, height = 320, label, onClick, focusIndex = null }: {
  option: EChartsCoreOption;
  height?: number;
  label: string;
  onClick?: (params: { data?: unknown; dataIndex: number; seriesIndex?: number }) => void;
  /** A data index of series 0 to point at (tooltip + emphasis), e.g. a keyboard cursor. */
  focusIndex?: number | null;
}) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  const scheme = useComputedColorScheme("light");
  const click = useRef(onClick);
  click.current = onClick;
  useEffect(() => {
    if (!el.current) return;
    const c = echarts.init(el.current, scheme === "dark" ? "dark" : undefined, { renderer: "canvas" });
    chart.current = c;
    c.on("click", (p) => click.current?.(p as unknown as { data?: unknown; dataIndex: number }));
    const ro = new ResizeObserver(() => c.resize());
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      c.dispose();
      chart.current = null;
    };
  }, [scheme]);
  useEffect(() => {
    chart.current?.setOption({ backgroundColor: "transparent", ...option }, { notMerge: true, lazyUpdate: true });
  }, [option, scheme]);
  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    c.dispatchAction({ type: "downplay", seriesIndex: 0 });
    if (focusIndex === null) {
      c.dispatchAction({ type: "hideTip" });
      return;
    }
    c.dispatchAction({ type: "highlight", seriesIndex: 0, dataIndex: focusIndex });
    c.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: focusIndex });
  }, [focusIndex, option, scheme]);
  // The label sits on a wrapper: ECharts owns (and rewrites attributes of) its own container.
  return (
    <div role="img" aria-label={label}>
      <div ref={el} style={{ width: "100%", height }} />
    </div>
  );
}
