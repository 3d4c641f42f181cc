"""Stage 5, deploy: export the trained model, register it, serve it over REST.

    from workbench.deploy.export import export_model      # inference model -> .keras,
    export = export_model(run_dir, "runs/deploy/digits")   #   SavedModel, ONNX, export.json

Export (`inference.py`, `export.py`) rebuilds the data version's fitted transform as Keras
layers in front of the trained network, so the exported model takes raw inputs, and checks
and times each format; the registry keeps exported versions with their lineage and aliases;
the service answers TF Serving and KServe v2 clients. This package imports nothing on purpose:
`import workbench` stays fast, and each module loads Keras or MLflow only when it is used.
"""
