import { lazy, Suspense, type ReactNode } from "react";
import { Loader, Center } from "@mantine/core";
import { BrowserRouter, Navigate, Route, Routes } from "react-router";
import { SessionProvider, useSession } from "./auth/session";
import { SignIn } from "./auth/SignIn";
import { Layout } from "./shell/Layout";
import { QueuesPage } from "./queues/QueuesPage";
import { JobsPage } from "./jobs/JobsPage";
import { SchedulesPage } from "./schedules/SchedulesPage";
import { BatchesPage } from "./batches/BatchesPage";
import { DeadLettersPage } from "./dead-letters/DeadLettersPage";
import { AlertsPage } from "./alerts/AlertsPage";

// ECharts is most of the bundle: the pages that draw with it load on first visit.
const TimelinePage = lazy(() => import("./timeline/TimelinePage"));
const ChartsPage = lazy(() => import("./charts/ChartsPage"));
// The Workers page draws sparkline charts with ECharts too (eager, it put ECharts in the first route).
const WorkersPage = lazy(() => import("./workers/WorkersPage").then((m) => ({ default: m.WorkersPage })));
// The eight admin analytics pages (issue 16): one chunk, loaded on the first visit to /analytics.
const AnalyticsRoutes = lazy(() => import("./analytics/AnalyticsRoutes"));

function Loading() {
  return (
    <Center p="xl">
      <Loader aria-label="Loading" />
    </Center>
  );
}

function AdminOnly({ children }: { children: ReactNode }) {
  const s = useSession();
  return s.isAdmin ? <>{children}</> : <Navigate to="/queues" replace />;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<Navigate to="/queues" replace />} />
        <Route path="queues" element={<QueuesPage />} />
        <Route path="queues/:queue/capacity" element={<QueuesPage />} />
        <Route path="jobs" element={<JobsPage />} />
        <Route path="jobs/:jobId" element={<JobsPage />} />
        <Route path="timeline" element={<AdminOnly><Suspense fallback={<Loading />}><TimelinePage /></Suspense></AdminOnly>} />
        <Route path="workers" element={<AdminOnly><Suspense fallback={<Loading />}><WorkersPage /></Suspense></AdminOnly>} />
        <Route path="dead-letters" element={<AdminOnly><DeadLettersPage /></AdminOnly>} />
        <Route path="schedules" element={<SchedulesPage />} />
        <Route path="batches" element={<BatchesPage />} />
        <Route path="charts" element={<AdminOnly><Suspense fallback={<Loading />}><ChartsPage /></Suspense></AdminOnly>} />
        <Route path="alerts" element={<AlertsPage />} />
        <Route path="analytics/*" element={<AdminOnly><Suspense fallback={<Loading />}><AnalyticsRoutes /></Suspense></AdminOnly>} />
        <Route path="*" element={<Navigate to="/queues" replace />} />
      </Route>
    </Routes>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <SessionProvider signIn={(done) => <SignIn onSignedIn={done} />}>
        <AppRoutes />
      </SessionProvider>
    </BrowserRouter>
  );
}
