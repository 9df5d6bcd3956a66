-- kpi_em_tag_48h: orders starting in the month whose tag was fitted within 48 hours (measure em_tag_48h).
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.hours_to_fit <= 48 THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM em_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.start_period = s.period
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
