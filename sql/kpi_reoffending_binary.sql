-- kpi_reoffending_binary: people served in the cohort quarter with a proven reoffence within
-- 12 months (measure reo_binary_12m; lower is better). Period = the quarter's first month.
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x cohort quarter x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.reoffended_12m THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM reoffending_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.served
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
