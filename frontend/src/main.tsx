import "@mantine/core/styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { MantineProvider, createTheme, localStorageColorSchemeManager } from "@mantine/core";
import { App } from "./App";

const theme = createTheme({
  primaryColor: "blue",
  // System fonts only: nothing is fetched from a CDN, the dashboard works offline.
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto" colorSchemeManager={localStorageColorSchemeManager({ key: "jobline-color-scheme" })}>
      <App />
    </MantineProvider>
  </StrictMode>,
);
