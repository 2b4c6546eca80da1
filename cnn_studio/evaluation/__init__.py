"""How good a trained model is: metrics and confusion on held-out images, studies (volumes),
confidence intervals, calibration and the check after training (review)."""
