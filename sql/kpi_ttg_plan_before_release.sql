-- kpi_ttg_plan_before_release: releases in the month with a resettlement plan dated before the release
-- (measure ttg_plan_before_release). A missing plan counts as not met.
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.resettlement_plan_date IS NOT NULL AND r.resettlement_plan_date < r.release_date THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM ttg_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.release_period = s.period
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
