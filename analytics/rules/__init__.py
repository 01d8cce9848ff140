"""Alert rules: each rule is a small dataclass (its parameters) with one evaluation method.

`engine.RuleEngine` dispatches a record only to the rules registered for its device kind, and
passes rule signals on to rules that follow them. `defaults.default_rules()` is SPEC section 5:

- `event`, `lane`: raised and cleared by device events (fire_alarm, panic, fire_lane_blocked ...);
- `threshold`, `sustained`, `tiered`: limits with hysteresis, hold times, sample counts, two levels;
- `rate`: rate of rise; `burst`: N events in a window; `duration`: open too long (tick-driven);
- `correlation`: fire_confirmed from other rules' signals in one zone;
- `sequence`: dual control before a cabinet opens; `school_hours`: the school-hours calendar;
- `ventilation`: fan off while vapour builds; `health`: device offline.
"""
