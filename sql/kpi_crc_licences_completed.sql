-- kpi_crc_licences_completed: licences ending in the month that were completed (measure crc_licences_completed).
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.outcome = 'completed' THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM crc_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.end_period = s.period
  AND r.order_type = 'LICENCE'
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
