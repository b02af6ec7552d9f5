import { useEffect } from "react";
import { Badge, Tooltip } from "@mantine/core";
import { Link } from "react-router";
import { useQuery } from "urql";
import { FiringAlertsQuery } from "./documents";

/** The header's firing-alerts indicator: how many alerts fire now, linking to them. */
export function FiringAlerts() {
  const [{ data }, refetch] = useQuery({ query: FiringAlertsQuery });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: "network-only" }), 15_000);
    return () => clearInterval(t);
  }, [refetch]);
  const page = data?.alerts;
  if (!page || page.firing === 0) return null;
  const names = page.alerts.map((a) => a.ruleName).join(", ");
  const label = `${page.firing} alert${page.firing === 1 ? "" : "s"} firing`;
  return (
    <Tooltip label={names}>
      <Badge component={Link} to="/alerts?tab=history&status=firing" color="red" variant="filled" aria-label={`${label}: ${names}`} style={{ cursor: "pointer" }}>
        {label}
      </Badge>
    </Tooltip>
  );
}
