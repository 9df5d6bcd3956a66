"""The 42 criminal-justice areas (police force areas) of England and Wales.

Codes are the ONS police force area codes (E23/W15); London combines the
Metropolitan and City of London forces under the Metropolitan code, as the
42 Local Criminal Justice Boards do. Populations are rough mid-2020s figures in
millions (domain-reference.md, section 6.2), used only to size synthetic caseloads.
Check codes against the ONS "Police Force Area" lookup before joining real data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AreaInfo:
    code: str
    name: str
    region: str
    commissioner_type: str
    population_m: float


AREAS: tuple[AreaInfo, ...] = (
    AreaInfo("E23000036", "Avon and Somerset", "South West", "PCC", 1.8),
    AreaInfo("E23000026", "Bedfordshire", "East of England", "PCC", 0.7),
    AreaInfo("E23000023", "Cambridgeshire", "East of England", "PCC", 0.9),
    AreaInfo("E23000006", "Cheshire", "North West", "PCC", 1.1),
    AreaInfo("E23000013", "Cleveland", "North East", "PCC", 0.57),
    AreaInfo("E23000002", "Cumbria", "North West", "PFCC", 0.5),
    AreaInfo("E23000018", "Derbyshire", "East Midlands", "PCC", 1.1),
    AreaInfo("E23000035", "Devon and Cornwall", "South West", "PCC", 1.8),
    AreaInfo("E23000039", "Dorset", "South West", "PCC", 0.8),
    AreaInfo("E23000008", "Durham", "North East", "PCC", 0.65),
    AreaInfo("W15000004", "Dyfed-Powys", "Wales", "PCC", 0.5),
    AreaInfo("E23000028", "Essex", "East of England", "PFCC", 1.9),
    AreaInfo("E23000037", "Gloucestershire", "South West", "PCC", 0.65),
    AreaInfo("E23000005", "Greater Manchester", "North West", "Mayor", 2.9),
    AreaInfo("W15000002", "Gwent", "Wales", "PCC", 0.6),
    AreaInfo("E23000030", "Hampshire and Isle of Wight", "South East", "PCC", 2.0),
    AreaInfo("E23000027", "Hertfordshire", "East of England", "PCC", 1.2),
    AreaInfo("E23000012", "Humberside", "Yorkshire and the Humber", "PCC", 0.9),
    AreaInfo("E23000032", "Kent", "South East", "PCC", 1.9),
    AreaInfo("E23000003", "Lancashire", "North West", "PCC", 1.5),
    AreaInfo("E23000021", "Leicestershire", "East Midlands", "PCC", 1.1),
    AreaInfo("E23000020", "Lincolnshire", "East Midlands", "PCC", 0.8),
    AreaInfo("E23000001", "London", "London", "Mayor", 8.9),
    AreaInfo("E23000004", "Merseyside", "North West", "PCC", 1.4),
    AreaInfo("E23000024", "Norfolk", "East of England", "PCC", 0.9),
    AreaInfo("W15000001", "North Wales", "Wales", "PCC", 0.7),
    AreaInfo("E23000009", "North Yorkshire", "Yorkshire and the Humber", "Mayor", 0.8),
    AreaInfo("E23000022", "Northamptonshire", "East Midlands", "PFCC", 0.8),
    AreaInfo("E23000007", "Northumbria", "North East", "PCC", 1.5),
    AreaInfo("E23000019", "Nottinghamshire", "East Midlands", "PCC", 1.2),
    AreaInfo("W15000003", "South Wales", "Wales", "PCC", 1.3),
    AreaInfo("E23000011", "South Yorkshire", "Yorkshire and the Humber", "Mayor", 1.4),
    AreaInfo("E23000015", "Staffordshire", "West Midlands", "PFCC", 1.1),
    AreaInfo("E23000025", "Suffolk", "East of England", "PCC", 0.8),
    AreaInfo("E23000031", "Surrey", "South East", "PCC", 1.2),
    AreaInfo("E23000033", "Sussex", "South East", "PCC", 1.7),
    AreaInfo("E23000029", "Thames Valley", "South East", "PCC", 2.5),
    AreaInfo("E23000017", "Warwickshire", "West Midlands", "PCC", 0.6),
    AreaInfo("E23000016", "West Mercia", "West Midlands", "PCC", 1.3),
    AreaInfo("E23000014", "West Midlands", "West Midlands", "PCC", 2.9),
    AreaInfo("E23000010", "West Yorkshire", "Yorkshire and the Humber", "Mayor", 2.4),
    AreaInfo("E23000038", "Wiltshire", "South West", "PCC", 0.7),
)

AREAS_BY_CODE = {area.code: area for area in AREAS}
AREAS_BY_NAME = {area.name: area for area in AREAS}
assert len(AREAS) == 42 and len(AREAS_BY_CODE) == 42
