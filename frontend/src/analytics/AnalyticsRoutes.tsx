// The Analytics section (issue 16): one lazily loaded chunk for its eight pages (App.tsx), so the
// first route does not carry them. Admin only (the API's analytics reads are admin only too).
import { Navigate, Route, Routes } from "react-router";
import SummaryPage from "./SummaryPage";
import QueuesPage from "./QueuesPage";
import FailuresPage from "./FailuresPage";
import RetriesPage from "./RetriesPage";
import ResourcesPage from "./ResourcesPage";
import CostPage from "./CostPage";
import SlaPage from "./SlaPage";
import DependenciesPage from "./DependenciesPage";

/** Paths under /analytics and their navigation names (shell/Layout.tsx lists the same). */
export const ANALYTICS_PAGES = [
  { path: "", label: "Executive summary" },
  { path: "queues", label: "Queue deep dive" },
  { path: "failures", label: "Failures" },
  { path: "retries", label: "Retries" },
  { path: "resources", label: "Resources" },
  { path: "cost", label: "Cost" },
  { path: "sla", label: "SLA" },
  { path: "dependencies", label: "Dependencies" },
] as const;

export default function AnalyticsRoutes() {
  return (
    <Routes>
      <Route index element={<SummaryPage />} />
      <Route path="queues" element={<QueuesPage />} />
      <Route path="failures" element={<FailuresPage />} />
      <Route path="retries" element={<RetriesPage />} />
      <Route path="resources" element={<ResourcesPage />} />
      <Route path="cost" element={<CostPage />} />
      <Route path="sla" element={<SlaPage />} />
      <Route path="dependencies" element={<DependenciesPage />} />
      <Route path="*" element={<Navigate to="/analytics" replace />} />
    </Routes>
  );
}
