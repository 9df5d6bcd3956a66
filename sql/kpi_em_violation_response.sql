-- kpi_em_violation_response: violations on orders ending in the month that were notified to the
-- responsible officer within the target time (measure em_violation_response).
-- Returns: contract_id, period, submission_id, numerator, denominator (violations, not orders).
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(r.violations_responded_in_time) AS numerator,
       SUM(r.violations) AS denominator
FROM em_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.end_period = s.period
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
