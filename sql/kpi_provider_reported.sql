-- kpi_provider_reported: numerators and denominators reported by providers in kpi_aggregate returns.
-- Returns: contract_id, measure_code, period, submission_id, numerator, denominator.
-- Grain: contract x measure x month x current accepted submission.
SELECT a.contract_id, a.measure_code, a.period, s.id AS submission_id,
       a.numerator, a.denominator
FROM aggregate_record a
JOIN submission s ON s.id = a.submission_id
WHERE s.is_current AND s.status = 'accepted'
  AND s.period BETWEEN :first_period AND :last_period
