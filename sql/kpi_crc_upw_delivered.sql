-- kpi_crc_upw_delivered: unpaid work hours delivered as a share of hours ordered, on orders ending in
-- the month that carried unpaid work (measure crc_upw_hours_delivered). Units are hours, not people.
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(COALESCE(r.upw_hours_delivered, 0)) AS numerator,
       SUM(r.upw_hours_ordered) AS denominator
FROM crc_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.end_period = s.period
  AND r.upw_hours_ordered > 0
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
