"""The headline rows of an evaluation report: what `ilbot eval` prints and the app's report view
shows, in one place. Plain data (no torch), so the app reads reports without the evaluation code.

Each row: (report.json key, row label, format; None for a q10/q50/q90 triple).
"""

HEADLINE = [("event_accuracy", "accuracy (argmax)", "{:.3f}"), ("event_macro_f1", "macro-F1", "{:.3f}"),
            ("event_brier", "event Brier", "{:.3f}"), ("event_ece", "event ECE", "{:.3f}"),
            ("dt_mae_q50_ms", "dt q50 MAE ms", "{:.1f}"),
            ("dt_pinball_ms", "dt pinball ms (q10/q50/q90)", None), ("dt_coverage_q10_q90", "[q10,q90] cov", "{:.3f}"),
            ("dt_wis_ms", "dt WIS ms", "{:.1f}"),
            ("xy_mae_px", "xy MAE px", "{:.1f}"), ("xy_nll", "xy NLL", "{:.2f}"),
            ("x_crps_px", "x CRPS px", "{:.1f}"), ("y_crps_px", "y CRPS px", "{:.1f}"),
            ("x_coverage_1sigma", "x 1σ cov", "{:.3f}"), ("y_coverage_1sigma", "y 1σ cov", "{:.3f}")]
