"""The core every app may import and that imports no app: who people are to Promptledger (teams,
memberships, site roles, API tokens), who is acting, who may do what, the domain errors, the
risk tier. ``audit`` stands on it alone; ``registry`` and the apps above build on both."""
