"""Run the outcome methods on stored data and keep each result as a Finding.

* Comparison group (Justice Data Lab style): for each contract's reoffending cohorts,
  people served are matched on their propensity score to unserved people in the same
  cohorts; the finding is the difference in 12-month proven reoffending (ATT) with its
  interval, the naive difference for contrast, balance and the minimum detectable effect.
* Synthetic control: for each contract variation of kind ``service_redesign`` that names a
  measure, the area's monthly KPI is compared with a weighted mix of the same KPI in the
  other areas, with placebo-in-space inference.
* Staggered roll-out: the ``rollout`` variations aimed at one KPI on contracts of one service, each area at its
  own date, get Callaway & Sant'Anna's staggered difference-in-differences across all areas of the service
  (against areas not yet treated), with the Goodman-Bacon decomposition of the TWFE estimate: one finding per
  roll-out (:func:`rollout_findings`).

Findings are replaced, not duplicated, when the same analysis runs again; the
``input_hash`` records exactly which submissions (by sha256) went in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import delete
from sqlmodel import Session, select

from contracts.models import (
    Contract,
    ContractVariation,
    Finding,
    KpiValue,
    ReoffendingRecord,
    Submission,
)
from outcomes.errors import OutcomesError
from outcomes.jdl import MIN_COHORT
from outcomes.matching import match
from outcomes.power import mde_two_proportions, verdict
from outcomes.synth import synthetic_control

log = logging.getLogger(__name__)

COHORT_COVARIATES = ["age", "sex", "offence_group", "prior_offences", "risk_score", "sentence_type"]
MATCH_METHOD = "psm_nn_1to5_replacement"
SYNTH_METHOD = "synthetic_control"
MEANINGFUL_CHANGE = 0.05  # 5 points of 12-month reoffending: the change a commissioner would act on
MIN_SERVED = MIN_COHORT  # the Justice Data Lab's rule: no comparison-group result for fewer than 60 people served


def _caveats(*groups) -> list[str]:
    """Every caveat once, in order (warnings caught while fitting and the result's own)."""
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(str(getattr(item, "message", item)), None)
    return list(seen)


def _input_hash(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def _replace_finding(session: Session, finding: Finding) -> Finding:
    session.execute(delete(Finding).where(Finding.contract_id == finding.contract_id,
                                          Finding.measure_code == finding.measure_code,
                                          Finding.method == finding.method))
    session.add(finding)
    return finding


def cohort_findings(session: Session, alpha: float, contract_ids: list[str] | None = None) -> list[Finding]:
    """Match served against unserved people in each contract's current reoffending cohorts."""
    query = (select(ReoffendingRecord, Submission.sha256)
             .join(Submission, Submission.id == ReoffendingRecord.submission_id)
             .where(Submission.is_current, Submission.status == "accepted"))
    if contract_ids:
        query = query.where(ReoffendingRecord.contract_id.in_(contract_ids))
    rows = session.exec(query).all()
    if not rows:
        return []
    frame = pd.DataFrame([{**r.model_dump(), "sha256": sha} for r, sha in rows])
    findings = []
    for contract_id, cohort in frame.groupby("contract_id"):
        served = int(cohort["served"].sum())
        cohorts = sorted(cohort["cohort_period"].unique())
        label = f"{cohorts[0]} to {cohorts[-1]}" if len(cohorts) > 1 else cohorts[0]
        if served < MIN_SERVED:
            log.info("%s: %d people served, below %d: no comparison-group finding", contract_id, served, MIN_SERVED)
            continue
        data = cohort.assign(served=cohort["served"].astype(int), reoffended_12m=cohort["reoffended_12m"].astype(int))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = match(data, "served", "reoffended_12m", COHORT_COVARIATES, caliper=0.2, ratio=5,
                               replace=True, alpha=alpha, meaningful_effect=MEANINGFUL_CHANGE)
        except OutcomesError as exc:
            log.warning("%s: comparison group not possible: %s", contract_id, exc)
            continue
        base = float(result.control_mean)
        mde = mde_two_proportions(result.n_matched, max(result.n_control_used, 1), min(max(base, 0.01), 0.99), alpha=alpha)
        judged = verdict(result.att.ci_low, result.att.ci_high, MEANINGFUL_CHANGE)
        parameters = {
            "covariates": COHORT_COVARIATES, "caliper_sd": 0.2, "ratio": 5, "replace": True,
            "cohorts": cohorts, "n_people": len(cohort), "n_served": served, "n_matched": result.n_matched,
            "n_control_used": result.n_control_used, "treated_rate": result.treated_mean,
            "comparison_rate": result.control_mean, "naive_difference": result.naive.estimate,
            "naive_ci": [result.naive.ci_low, result.naive.ci_high],
            "max_smd_before": result.balance.max_smd_before, "max_smd_after": result.balance.max_smd_after,
            "balanced": bool(result.balance.balanced), "mde": mde.mde, "meaningful_change": MEANINGFUL_CHANGE,
            "headline": result.headline, "verdict_sentence": judged.sentence,
            "caveats": _caveats(caught, result.warnings),
            "balance_table": result.balance.table.round(4).to_dict("records"),
            "result": result.to_dict(), "mde_result": mde.to_dict(),
            "sensitivity": result.sensitivity_headline, "e_value": result.e_value["estimate"],
            "e_value_ci": result.e_value["ci"], "rosenbaum_gamma": result.rosenbaum_gamma,
        }
        findings.append(_replace_finding(session, Finding(
            contract_id=contract_id, area_code=str(cohort["area_code"].iloc[0]), measure_code="reo_binary_12m",
            cohort=label, method=MATCH_METHOD, estimate=result.att.estimate, ci_low=result.att.ci_low,
            ci_high=result.att.ci_high, p_value=result.att.p_value, alpha=alpha, verdict=judged.code,
            parameters=json.dumps(parameters, default=float), input_hash=_input_hash(list(cohort["sha256"].unique())),
            created_at=datetime.now(UTC),
        )))
        frequency = _frequency_finding(data, contract_id, label, cohorts, alpha, cohort)
        if frequency is not None:
            findings.append(_replace_finding(session, frequency))
        timing = _time_to_reoffence_finding(data, contract_id, label, cohorts, alpha, cohort)
        if timing is not None:
            findings.append(_replace_finding(session, timing))
        custody = _custodial_finding(data, contract_id, label, cohorts, alpha, cohort)
        if custody is not None:
            findings.append(_replace_finding(session, custody))
    return findings


def _custodial_finding(data: pd.DataFrame, contract_id: str, label: str, cohorts: list[str], alpha: float,
                       cohort: pd.DataFrame) -> Finding | None:
    """Custody for the first proven reoffence among reoffenders, matched (spec v3 returns only)."""
    from outcomes.custodial import custodial_first_reoffence

    if "custodial_first" not in data or data.loc[data["reoffended_12m"] == 1, "custodial_first"].isna().all():
        return None  # returns made from the v1 or v2 template: no custodial column
    try:
        result = custodial_first_reoffence(data, "served", "reoffended_12m", "custodial_first", COHORT_COVARIATES,
                                           alpha=alpha)
    except OutcomesError as exc:
        log.warning("%s: custodial measure not possible: %s", contract_id, exc)
        return None
    if not result.reportable:
        log.info("%s: custodial measure not shown (JDL small-number rule)", contract_id)
        return None
    e = result.effect
    code = "reduction" if e.ci_high < 0 else "increase" if e.ci_low > 0 else "inconclusive"
    parameters = {"covariates": COHORT_COVARIATES, "cohorts": cohorts, "n_reoffenders": result.n_reoffenders,
                  "n_matched": result.matched.n_matched, "treated_rate": result.matched.treated_mean,
                  "comparison_rate": result.matched.control_mean, "headline": result.headline,
                  "caveats": list(result.warnings), "result": result.to_dict()}
    return Finding(
        contract_id=contract_id, area_code=str(cohort["area_code"].iloc[0]), measure_code="reo_custodial_first",
        cohort=label, method=CUSTODIAL_METHOD, estimate=e.estimate, ci_low=e.ci_low, ci_high=e.ci_high,
        p_value=e.p_value, alpha=alpha, verdict=code, parameters=json.dumps(parameters, default=float),
        input_hash=_input_hash(list(cohort["sha256"].unique())), created_at=datetime.now(UTC),
    )


CUSTODIAL_METHOD = "psm_custodial_reoffenders"


SURVIVAL_METHOD = "km_cox_matched"
DAYS_PER_MONTH = 365.25 / 12


def _time_to_reoffence_finding(data: pd.DataFrame, contract_id: str, label: str, cohorts: list[str], alpha: float,
                               cohort: pd.DataFrame) -> Finding | None:
    """Time to first proven reoffence over the 12-month follow-up: matched Kaplan-Meier curves, the restricted
    mean time difference at 12 months and the pair-clustered Cox hazard ratio (JDL: shown with 30+ reoffenders)."""
    from outcomes.survival import time_to_reoffence

    days = data["days_to_first"].astype("Float64")
    frame = data.assign(months=(days.fillna(365.0).clip(upper=365.0).astype(float) / DAYS_PER_MONTH),
                        first_reoffence=data["reoffended_12m"].astype(int))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = time_to_reoffence(frame, "months", "first_reoffence", "served", covariates=COHORT_COVARIATES,
                                       match=True, horizon=12.0, alpha=alpha)
    except OutcomesError as exc:
        log.warning("%s: time to first reoffence not possible: %s", contract_id, exc)
        return None
    if not result.reportable:
        log.info("%s: %d reoffenders, below %d: time to first reoffence not shown", contract_id, result.events, 30)
        return None
    e = result.rmst_difference
    code = "later" if e.ci_low > 0 else "sooner" if e.ci_high < 0 else "inconclusive"
    parameters = {"covariates": COHORT_COVARIATES, "cohorts": cohorts, "horizon_months": 12.0, "n": result.n,
                  "reoffenders": result.events, "rmst_treated": result.rmst_treated,
                  "rmst_control": result.rmst_control, "hazard_ratio": result.hazard_ratio.to_dict(),
                  "unit": "months free of proven reoffending in the first 12", "headline": result.headline,
                  "caveats": _caveats(caught, result.warnings), "result": result.to_dict()}
    return Finding(
        contract_id=contract_id, area_code=str(cohort["area_code"].iloc[0]), measure_code="reo_time_to_first",
        cohort=label, method=SURVIVAL_METHOD, estimate=e.estimate, ci_low=e.ci_low, ci_high=e.ci_high,
        p_value=e.p_value, alpha=alpha, verdict=code, parameters=json.dumps(parameters, default=float),
        input_hash=_input_hash(list(cohort["sha256"].unique())), created_at=datetime.now(UTC),
    )


def _frequency_finding(data: pd.DataFrame, contract_id: str, label: str, cohorts: list[str], alpha: float,
                       cohort: pd.DataFrame) -> Finding | None:
    """The same matched design on the frequency outcome: proven reoffences per person in 12 months (Peterborough)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = match(data, "served", "reoffences_12m", COHORT_COVARIATES, caliper=0.2, ratio=5,
                           replace=True, alpha=alpha, outcome_label="reoffences per person",
                           count_noun="proven reoffences")
    except OutcomesError as exc:
        log.warning("%s: frequency comparison not possible: %s", contract_id, exc)
        return None
    comparison = float(result.control_mean)
    relative = result.att.estimate / comparison if comparison > 0 else float("nan")
    significant_down = result.att.ci_high < 0
    significant_up = result.att.ci_low > 0
    code = "reduction" if significant_down else "increase" if significant_up else "inconclusive"
    parameters = {
        "covariates": COHORT_COVARIATES, "caliper_sd": 0.2, "ratio": 5, "replace": True, "cohorts": cohorts,
        "n_people": len(cohort), "n_matched": result.n_matched, "n_control_used": result.n_control_used,
        "treated_rate": result.treated_mean, "comparison_rate": comparison, "relative_change": relative,
        "relative_ci": [result.att.ci_low / comparison, result.att.ci_high / comparison] if comparison > 0 else None,
        "naive_difference": result.naive.estimate, "max_smd_after": result.balance.max_smd_after,
        "balanced": bool(result.balance.balanced), "unit": "proven reoffences per person in 12 months",
        "headline": result.headline, "caveats": _caveats(caught, result.warnings), "result": result.to_dict(),
    }
    return Finding(
        contract_id=contract_id, area_code=str(cohort["area_code"].iloc[0]), measure_code="reo_frequency_12m",
        cohort=label, method=MATCH_METHOD, estimate=result.att.estimate, ci_low=result.att.ci_low,
        ci_high=result.att.ci_high, p_value=result.att.p_value, alpha=alpha, verdict=code,
        parameters=json.dumps(parameters, default=float), input_hash=_input_hash(list(cohort["sha256"].unique())),
        created_at=datetime.now(UTC),
    )


def synth_findings(session: Session, alpha: float) -> list[Finding]:
    """Synthetic control for each service redesign that names the measure it targets."""
    variations = session.exec(select(ContractVariation).where(ContractVariation.kind == "service_redesign",
                                                              ContractVariation.measure_code.is_not(None))).all()
    findings = []
    for variation in variations:
        contract = session.get(Contract, variation.contract_id)
        peers = session.exec(select(Contract).where(Contract.service_type == contract.service_type)).all()
        area_of = {c.id: c.area_code for c in peers}
        values = session.exec(select(KpiValue).where(KpiValue.measure_code == variation.measure_code,
                                                     KpiValue.contract_id.in_(list(area_of)),
                                                     KpiValue.source == "derived")).all()
        panel = pd.DataFrame([{"area": area_of[v.contract_id], "period": v.period, "value": v.value,
                               "ids": v.submission_ids} for v in values if v.value is not None])
        if panel.empty:
            continue
        periods = panel.groupby("area")["period"].nunique()
        complete = periods[periods == panel["period"].nunique()].index
        panel = panel[panel["area"].isin(complete)]
        start = variation.effective_date.strftime("%Y-%m")
        try:
            result = synthetic_control(panel, "area", "period", "value", contract.area_code, start, alpha=alpha)
        except OutcomesError as exc:
            log.warning("%s: synthetic control not possible: %s", contract.id, exc)
            continue
        n_areas = result.n_units
        if result.placebo_p_value is not None and result.placebo_p_value <= alpha:
            judged = "effect"
        elif result.rank == 1:
            judged = "too few areas"
        else:
            judged = "not distinguishable"
        parameters = {
            "intervention": start, "donors": int(n_areas - 1), "interval_method": result.interval_method,
            "weights": {k: round(v, 4) for k, v in result.weights.items() if v > 1e-4},
            "pre_rmspe": result.pre_rmspe, "post_rmspe": result.post_rmspe, "rmspe_ratio": result.ratio,
            "placebo_p_value": result.placebo_p_value, "rank": result.rank,
            "gaps": result.gaps[["time", "actual", "synthetic", "gap"]].round(4).to_dict("records"),
            "headline": result.headline, "verdict_sentence": result.headline, "caveats": list(result.warnings),
            "result": result.to_dict(),
            "checks": _synth_checks(panel, contract.area_code, start, alpha, result.average_post_gap),
        }
        findings.append(_replace_finding(session, Finding(
            contract_id=contract.id, area_code=contract.area_code, measure_code=variation.measure_code,
            method=SYNTH_METHOD, estimate=result.average_post_gap, ci_low=result.ci_low,
            ci_high=result.ci_high, p_value=result.placebo_p_value, alpha=alpha,
            verdict=judged,
            parameters=json.dumps(parameters, default=float), input_hash=_input_hash(list(panel["ids"].unique())),
            created_at=datetime.now(UTC),
        )))
    return findings



ITS_METHOD = "its_binomial_segmented"


def its_findings(session: Session, alpha: float) -> list[Finding]:
    """Interrupted time series for each contract variation that names a measure (but a roll-out): did the KPI move?

    A binomial segmented regression (quasi-binomial errors, annual Fourier seasonality) of the monthly
    KPI; the finding is the mean change over the post-variation months against the counterfactual,
    on the rate scale, with its interval.
    """
    from outcomes.its import fit_its

    findings = []
    # A roll-out's variations are analysed across areas (rollout_findings), against the areas not yet treated,
    # rather than against one area's own earlier trend.
    variations = session.exec(select(ContractVariation).where(ContractVariation.measure_code.is_not(None),
                                                              ContractVariation.kind != "rollout")).all()
    for variation in variations:
        values = session.exec(select(KpiValue).where(KpiValue.contract_id == variation.contract_id,
                                                     KpiValue.measure_code == variation.measure_code,
                                                     KpiValue.source == "derived")
                              .order_by(KpiValue.period)).all()
        series = pd.DataFrame([{"period": v.period, "numerator": v.numerator, "denominator": v.denominator,
                                "ids": v.submission_ids} for v in values if v.denominator > 0])
        at = variation.effective_date.strftime("%Y-%m")
        if series.empty:
            continue
        try:
            result = fit_its(series, "period", "numerator", at, family="binomial", denominator="denominator",
                             seasonality="fourier:1", scale="pearson", alpha=alpha)
        except OutcomesError as exc:
            log.warning("%s %s: ITS not possible: %s", variation.contract_id, variation.measure_code, exc)
            continue
        effect = result.post_effect
        if effect["absolute_low"] > 0:
            judged = "increase"
        elif effect["absolute_high"] < 0:
            judged = "decrease"
        else:
            judged = "no detectable change"
        parameters = {
            "intervention": at, "variation": variation.kind, "description": variation.description,
            "model": "binomial segmented regression, quasi-binomial scale, Fourier seasonality (1 pair)",
            "level_change_logit": result.level_change.to_dict(),
            "slope_change_logit": result.slope_change.to_dict() if result.slope_change else None,
            "odds_ratio": result.effects[0].ratio, "post_effect": effect, "diagnostics": result.diagnostics,
            "sentence": result.sentence(), "series": result.frame.round(5).to_dict("records"),
            "headline": result.headline, "caveats": list(result.warnings), "result": result.to_dict(),
            "checks": _its_checks(series, at, alpha),
        }
        findings.append(_replace_finding(session, Finding(
            contract_id=variation.contract_id, measure_code=variation.measure_code, method=ITS_METHOD,
            estimate=effect["absolute"], ci_low=effect["absolute_low"], ci_high=effect["absolute_high"],
            p_value=result.level_change.p_value, alpha=alpha, verdict=judged,
            parameters=json.dumps(parameters, default=float), input_hash=_input_hash(list(series["ids"].unique())),
            created_at=datetime.now(UTC),
        )))
    return findings


def _run_check(function, *args, **kwargs) -> dict | None:
    from outcomes.errors import OutcomesError as _Error

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs).to_dict()
    except _Error as exc:
        log.warning("robustness check %s not possible: %s", function.__name__, exc)
        return None


def _synth_checks(panel: pd.DataFrame, area: str, start: str, alpha: float, gap: float) -> list[dict]:
    """Placebo in time and leave one donor out, run wherever the synthetic control ran."""
    from outcomes.checks import synth_leave_one_out, synth_placebo_in_time

    checks = [_run_check(synth_placebo_in_time, panel, "area", "period", "value", area, start, alpha=alpha,
                         real_gap=gap),
              _run_check(synth_leave_one_out, panel, "area", "period", "value", area, start, alpha=alpha)]
    return [c for c in checks if c is not None]


def _its_checks(series: pd.DataFrame, at: str, alpha: float) -> list[dict]:
    """Placebo in time, run wherever the ITS ran (same model)."""
    from outcomes.checks import its_placebo_in_time

    check = _run_check(its_placebo_in_time, series, "period", "numerator", at, family="binomial",
                       denominator="denominator", seasonality="fourier:1", scale="pearson", alpha=alpha)
    return [check] if check is not None else []


ROLLOUT_METHOD = "staggered_did"
ROLLOUT_CONTROL = "notyet"  # areas not yet treated (the never-treated among them): more comparisons than "never"


def rollout_findings(session: Session, alpha: float) -> list[Finding]:
    """Staggered difference-in-differences for each roll-out: one Finding per (service, KPI).

    A roll-out is the ``rollout`` variations aimed at the same KPI on contracts of one service (one per area, each
    with its own date; ``contracts.register``). The monthly KPI of every area with a contract of that service forms a
    balanced panel; Callaway & Sant'Anna's ATT(g, t) compares each area that adopted in month g with the areas not
    yet treated by then (the never-treated among them), aggregated over cohorts and by months since adoption. The
    Goodman-Bacon decomposition of the two-way fixed-effects estimate on the same panel is kept in the parameters,
    so the reader sees why a TWFE regression would say something else. The finding belongs to no one contract
    (``contract_id`` is empty); its ``cohort`` is the service and ``parameters["areas"]`` lists the adopters.
    """
    variations = session.exec(select(ContractVariation).where(ContractVariation.kind == "rollout",
                                                              ContractVariation.measure_code.is_not(None))
                              .order_by(ContractVariation.contract_id)).all()
    contracts = {c.id: c for c in session.exec(select(Contract)).all()}
    rollouts: dict[tuple[str, str], list[ContractVariation]] = {}
    for variation in variations:
        contract = contracts[variation.contract_id]
        rollouts.setdefault((contract.service_type, variation.measure_code), []).append(variation)
    findings = []
    for (service, measure), members in sorted(rollouts.items()):
        if len(members) < 2:
            log.info("%s %s: a roll-out to one contract only (%s): no staggered analysis (ITS covers it)",
                     service, measure, members[0].contract_id)
            continue
        finding = _rollout_finding(session, service, measure, members, contracts, alpha)
        if finding is None:
            continue
        session.execute(delete(Finding).where(Finding.contract_id.is_(None), Finding.method == ROLLOUT_METHOD,
                                              Finding.measure_code == measure, Finding.cohort == service))
        session.add(finding)
        findings.append(finding)
    return findings


def _rollout_finding(session: Session, service: str, measure: str, members: list[ContractVariation],
                     contracts: dict[str, Contract], alpha: float) -> Finding | None:
    from outcomes.staggered import bacon_decomposition, staggered_did

    peers = {cid: c for cid, c in contracts.items() if c.service_type == service}
    values = session.exec(select(KpiValue).where(KpiValue.measure_code == measure, KpiValue.source == "derived",
                                                 KpiValue.contract_id.in_(list(peers)))).all()
    rows = pd.DataFrame([{"area": peers[v.contract_id].area_code, "period": v.period, "numerator": v.numerator,
                          "denominator": v.denominator, "ids": v.submission_ids} for v in values])
    caveats: list[str] = []
    if rows.empty:
        log.warning("%s %s roll-out: no derived KPI values", service, measure)
        return None
    # One unit per area: an area with two contracts of the service (a re-let) pools them month by month.
    pooled = rows.groupby(["area", "period"], as_index=False).agg(numerator=("numerator", "sum"),
                                                                  denominator=("denominator", "sum"))
    pooled = pooled[pooled["denominator"] > 0].assign(value=lambda f: f["numerator"] / f["denominator"])
    periods = sorted(pooled["period"].unique())
    counts = pooled.groupby("area")["period"].nunique()
    incomplete = sorted(counts[counts < len(periods)].index)
    if incomplete:
        caveats.append(f"{len(incomplete)} area(s) lack some months of {measure} and are left out: "
                       f"{', '.join(incomplete)}")
        pooled = pooled[~pooled["area"].isin(incomplete)]
    starts: dict[str, str] = {}
    adopters = []
    for variation in sorted(members, key=lambda v: (v.effective_date, v.contract_id)):
        area = contracts[variation.contract_id].area_code
        start = variation.effective_date.strftime("%Y-%m")
        if area in starts:
            caveats.append(f"{area} has two contracts in the roll-out; its first date ({starts[area]}) is used")
            continue
        starts[area] = start
        adopters.append({"area_code": area, "contract_id": variation.contract_id, "start": start,
                         "description": variation.description})
    if len({a["start"] for a in adopters}) == 1:
        caveats.append("every area started on the same date: this is a single difference-in-differences, not a "
                       "staggered roll-out")
    panel = pooled.assign(first=pooled["area"].map(starts).fillna("0"))
    never = sorted(set(panel["area"]) - set(starts))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = staggered_did(panel, "area", "period", "value", "first", control=ROLLOUT_CONTROL, alpha=alpha)
            bacon = bacon_decomposition(panel, "area", "period", "value", "first")
            against_never = (staggered_did(panel, "area", "period", "value", "first", control="never", alpha=alpha)
                             if never else None)
    except OutcomesError as exc:
        log.warning("%s %s roll-out: staggered DiD not possible: %s", service, measure, exc)
        return None
    att = result.att
    judged = "increase" if att.ci_low > 0 else "decrease" if att.ci_high < 0 else "inconclusive"
    by_kind = (bacon.table.groupby("kind")
               .apply(lambda f: {"weight": float(f["weight"].sum()),
                                 "average": float((f["weight"] * f["estimate"]).sum() / f["weight"].sum())},
                      include_groups=False).to_dict())
    parameters = {
        "service": service, "measure": measure, "control": ROLLOUT_CONTROL,
        "control_sentence": "areas not yet treated at each month (including the never-treated areas)",
        "areas": adopters, "never_treated": never, "n_areas": result.n_units, "periods": [periods[0], periods[-1]],
        "outcome": f"monthly {measure} rate per area (numerator / denominator, pooled over the area's contracts)",
        "inference": result.inference, "headline": result.headline, "twfe": result.twfe,
        "att_never_treated": against_never.att.to_dict() if against_never is not None else None,
        "event_time": [{k: r[k] for k in ("e", "estimate", "ci_low", "ci_high")}
                       for r in result.to_dict()["event_time"]],
        "by_group": [{k: r[k] for k in ("group", "estimate", "ci_low", "ci_high")} for r in result.to_dict()["by_group"]],
        "bacon": {"twfe": bacon.twfe, "forbidden_weight": bacon.forbidden_weight, "headline": bacon.headline,
                  "by_kind": by_kind, "comparisons": len(bacon.table)},
        "caveats": _caveats(caveats, caught, result.warnings, bacon.warnings),
        "result": result.to_dict(),
    }
    return Finding(
        contract_id=None, area_code=None, measure_code=measure, cohort=service, method=ROLLOUT_METHOD,
        estimate=att.estimate, ci_low=att.ci_low, ci_high=att.ci_high, p_value=att.p_value, alpha=alpha,
        verdict=judged, parameters=json.dumps(parameters, default=float),
        input_hash=_input_hash(sorted(set(rows["ids"].astype(str)))), created_at=datetime.now(UTC),
    )
