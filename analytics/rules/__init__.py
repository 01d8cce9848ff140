"""Alert rules: each rule is a small dataclass (its parameters) with one evaluation method.

`engine.RuleEngine` dispatches a record only to the rules registered for its device kind.
"""
