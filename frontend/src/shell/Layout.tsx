import { AppShell, Badge, Box, Burger, Button, Group, NavLink, Text, Tooltip, useComputedColorScheme, useMantineColorScheme } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { NavLink as RouterLink, Outlet, useLocation } from "react-router";
import { useSession } from "../auth/session";
import { FiringAlerts } from "../alerts/FiringAlerts";

interface Item {
  to: string;
  label: string;
  admin?: boolean;
}

/** The pages; admin-only ones (their reads need an admin key) are not offered to developers. */
export const NAV: Item[] = [
  { to: "/queues", label: "Queues" },
  { to: "/jobs", label: "Jobs" },
  { to: "/timeline", label: "Timeline", admin: true },
  { to: "/workers", label: "Workers", admin: true },
  { to: "/dead-letters", label: "Dead letters", admin: true },
  { to: "/schedules", label: "Schedules" },
  { to: "/batches", label: "Batches" },
  { to: "/charts", label: "Charts", admin: true },
  { to: "/alerts", label: "Alerts" },
];

/** The Analytics group (admin only; issue 16): shown under its own link, expanded inside it. */
export const ANALYTICS_NAV: Item[] = [
  { to: "/analytics", label: "Executive summary" },
  { to: "/analytics/queues", label: "Queue deep dive" },
  { to: "/analytics/failures", label: "Failures" },
  { to: "/analytics/retries", label: "Retries" },
  { to: "/analytics/resources", label: "Resources" },
  { to: "/analytics/cost", label: "Cost" },
  { to: "/analytics/sla", label: "SLA" },
  { to: "/analytics/dependencies", label: "Dependencies" },
];

/** The range and filters travel between analytics pages (the Dependencies page's job id does not). */
function analyticsSearch(search: string): string {
  const p = new URLSearchParams(search);
  const keep = new URLSearchParams();
  for (const k of ["range", "from", "to", "queue", "jobType"]) {
    const v = p.get(k);
    if (v) keep.set(k, v);
  }
  const s = keep.toString();
  return s ? `?${s}` : "";
}

export function Layout() {
  const session = useSession();
  const [opened, { toggle }] = useDisclosure();
  const { setColorScheme } = useMantineColorScheme();
  const scheme = useComputedColorScheme("light");
  const location = useLocation();
  const inAnalytics = location.pathname === "/analytics" || location.pathname.startsWith("/analytics/");
  const search = inAnalytics ? analyticsSearch(location.search) : "";
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 200, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group>
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Text fw={700} size="lg">Jobline</Text>
          </Group>
          <Group gap="sm">
            <FiringAlerts />
            <Tooltip label={`Signed in as “${session.name}”`}>
              <Badge variant="outline" color={session.isAdmin ? "grape" : "blue"}>{session.role}</Badge>
            </Tooltip>
            <Button
              variant="default"
              size="xs"
              onClick={() => setColorScheme(scheme === "dark" ? "light" : "dark")}
              aria-label={scheme === "dark" ? "Switch to light mode" : "Switch to dark mode"}
            >
              {scheme === "dark" ? "Light" : "Dark"}
            </Button>
            <Button variant="subtle" size="xs" onClick={session.signOut}>Sign out</Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" component="nav" aria-label="Main" style={{ overflowY: "auto" }}>
        {NAV.filter((i) => !i.admin || session.isAdmin).map((i) => (
          <NavLink
            key={i.to}
            component={RouterLink}
            to={i.to}
            label={i.label}
            active={location.pathname.startsWith(i.to)}
          />
        ))}
        {session.isAdmin && (
          <NavLink
            component={RouterLink}
            to={inAnalytics ? `/analytics${search}` : "/analytics"}
            label="Analytics"
            active={inAnalytics}
          />
        )}
        {session.isAdmin && inAnalytics && (
          <Box role="group" aria-label="Analytics pages" pl="sm">
            {ANALYTICS_NAV.map((i) => (
              <NavLink
                key={i.to}
                component={RouterLink}
                to={`${i.to}${search}`}
                label={i.label}
                end
                active={location.pathname.replace(/\/$/, "") === i.to}
              />
            ))}
          </Box>
        )}
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
