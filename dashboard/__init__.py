"""Streamlit dashboard (``automl dashboard``): runs, live searches, the DDPNAS distribution, HPO
studies and face retrieval. It only reads the run store, Optuna storages and saved indexes.

Layout: ``app.py`` (entry, ``st.navigation``) and ``views/`` render (the pages' folder is not
named ``pages/``: Streamlit would also serve those as bare scripts, without the app's navigation,
to a browser whose first request is a deep link such as ``/run?run=5``); ``queries`` (paginated SQL),
``studies`` (Optuna sources), ``retrieval_data`` (index access), ``charts`` (plotly) and
``genotype_graph`` (DOT) hold the logic and are testable without Streamlit.
"""
