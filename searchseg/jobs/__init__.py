"""Jobs: the stages run in order for a user's command. ``pipeline``: search -> final model -> report;
``datacheck``: the data check and its preflight (``preflight``: a representative model measured on the data)."""
