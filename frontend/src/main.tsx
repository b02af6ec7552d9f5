import "@mantine/core/styles.css";
import "./ui/global.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Badge, Drawer, MantineProvider, Modal, createTheme, localStorageColorSchemeManager, type CSSVariablesResolver } from "@mantine/core";
import { App } from "./App";

const theme = createTheme({
  // People who ask their OS for less motion get no transitions (and axe sees final colours).
  respectReducedMotion: true,
  components: {
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { "aria-label": "Close" } } }),
    Drawer: Drawer.extend({ defaultProps: { closeButtonProps: { "aria-label": "Close" } } }),
    // Status words are short: show them whole instead of ellipsised inside narrow table cells.
    Badge: Badge.extend({ styles: { root: { maxWidth: "none", overflow: "visible", flexShrink: 0 }, label: { overflow: "visible" } } }),
  },
  primaryColor: "blue",
  // System fonts only: nothing is fetched from a CDN, the dashboard works offline.
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
});

// WCAG AA contrast everywhere (axe checks it in the e2e tests): Mantine's default "dimmed" grey,
// its light-variant text (shade 6 on a tint) and white text on shade-6/8 fills are below 4.5:1,
// so every colour's text and fill is darkened (light scheme) or lightened (dark scheme).
const resolver: CSSVariablesResolver = (t) => {
  const light: Record<string, string> = {
    "--mantine-color-dimmed": t.colors.gray[7], "--mantine-color-placeholder": t.colors.gray[6], "--mantine-color-anchor": t.colors.blue[9],
  };
  const dark: Record<string, string> = {
    "--mantine-color-dimmed": t.colors.dark[1], "--mantine-color-placeholder": t.colors.dark[2], "--mantine-color-anchor": t.colors.blue[3],
  };
  for (const c of Object.keys(t.colors)) {
    if (c === "dark") continue;
    const v = (shade: number) => `var(--mantine-color-${c}-${shade})`;
    Object.assign(light, {
      [`--mantine-color-${c}-light-color`]: `color-mix(in srgb, ${v(9)}, black 35%)`,
      [`--mantine-color-${c}-outline`]: `color-mix(in srgb, ${v(9)}, black 35%)`,
      [`--mantine-color-${c}-filled`]: `color-mix(in srgb, ${v(8)}, black 38%)`,
      [`--mantine-color-${c}-filled-hover`]: `color-mix(in srgb, ${v(9)}, black 45%)`,
      [`--mantine-color-${c}-text`]: `color-mix(in srgb, ${v(9)}, black 35%)`,
    });
    Object.assign(dark, {
      [`--mantine-color-${c}-light-color`]: `color-mix(in srgb, ${v(3)}, white 25%)`,
      [`--mantine-color-${c}-outline`]: `color-mix(in srgb, ${v(3)}, white 25%)`,
      [`--mantine-color-${c}-filled`]: `color-mix(in srgb, ${v(8)}, black 38%)`,
      [`--mantine-color-${c}-filled-hover`]: `color-mix(in srgb, ${v(9)}, black 45%)`,
      [`--mantine-color-${c}-text`]: `color-mix(in srgb, ${v(3)}, white 25%)`,
    });
  }
  return { variables: {}, light, dark };
};

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MantineProvider theme={theme} cssVariablesResolver={resolver} defaultColorScheme="auto" colorSchemeManager={localStorageColorSchemeManager({ key: "jobline-color-scheme" })}>
      <App />
    </MantineProvider>
  </StrictMode>,
);
