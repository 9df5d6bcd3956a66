-- kpi_crc_first_contact: orders allocated in the month with a first face-to-face appointment
-- within 5 working days of allocation (measure crc_first_contact_5wd).
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.first_appointment_wd <= 5 THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM crc_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.start_period = s.period
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
