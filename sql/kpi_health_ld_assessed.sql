-- kpi_health_ld_assessed: liaison and diversion referrals in the month assessed within 2 working days
-- (measure hl_ld_assessed_2wd).
-- Returns: contract_id, period, submission_id, numerator, denominator.
-- Grain: contract x month x current accepted submission (callers sum over submissions).
SELECT r.contract_id, s.period, s.id AS submission_id,
       SUM(CASE WHEN r.assessed_wd <= 2 THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM health_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.referral_period = s.period
  AND r.service = 'liaison_diversion'
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, s.period, s.id
