-- kpi_health_treatment_started: substance-misuse referrals in the month where treatment started at all
-- (measure hl_treatment_started).
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.treatment_start_date IS NOT NULL THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM health_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.referral_period = s.period
  AND r.service = 'substance_misuse'
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
