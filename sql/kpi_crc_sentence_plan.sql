-- kpi_crc_sentence_plan: orders allocated in the month with an initial sentence plan completed
-- within 15 working days of allocation (measure crc_plan_15wd). A missing plan counts as not met.
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.sentence_plan_wd <= 15 THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM crc_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.start_period = s.period
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
