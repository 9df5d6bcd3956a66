-- breakdown_crc_orders_completed: orders ending in the month that were completed (measure
-- crc_orders_completed), counted by the equality-monitoring fields for breakdowns.
-- Returns: contract_id, area_code, period, sex, age_band, ethnicity_group, care_leaver, numerator, denominator.
-- Grain: contract x month x sex x age band x ethnicity group x care-leaver flag (current accepted submissions).
SELECT r.contract_id, r.area_code, s.period, r.sex, r.age_band, r.ethnicity_group, r.care_leaver,
       SUM(CASE WHEN r.outcome = 'completed' THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM crc_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.end_period = s.period
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, r.area_code, s.period, r.sex, r.age_band, r.ethnicity_group, r.care_leaver
