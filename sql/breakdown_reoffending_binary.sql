-- breakdown_reoffending_binary: people served in the cohort quarter who reoffended within 12 months
-- (measure reo_binary_12m; lower is better), counted by the equality-monitoring fields. Age is banded
-- here as in the caseload returns. Period = the cohort quarter's first month.
-- Returns: contract_id, area_code, period, sex, age_band, ethnicity_group, care_leaver, numerator, denominator.
-- Grain: contract x cohort quarter x sex x age band x ethnicity group x care-leaver flag.
SELECT r.contract_id, r.area_code, s.period, r.sex,
       CASE WHEN r.age <= 20 THEN '18-20' WHEN r.age <= 24 THEN '21-24' WHEN r.age <= 34 THEN '25-34'
            WHEN r.age <= 49 THEN '35-49' ELSE '50+' END AS age_band,
       r.ethnicity_group, r.care_leaver,
       SUM(CASE WHEN r.reoffended_12m THEN 1 ELSE 0 END) AS numerator,
       COUNT(*) AS denominator
FROM reoffending_record r
JOIN submission s ON s.id = r.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND r.served
  AND s.period BETWEEN :first_period AND :last_period
GROUP BY r.contract_id, r.area_code, s.period, r.sex,
         CASE WHEN r.age <= 20 THEN '18-20' WHEN r.age <= 24 THEN '21-24' WHEN r.age <= 34 THEN '25-34'
              WHEN r.age <= 49 THEN '35-49' ELSE '50+' END,
         r.ethnicity_group, r.care_leaver
