"""Time integration.

BDF schemes and error estimates, the stepper that owns the integrator's history,
stops, and the run loop.
"""
