"""The web pages of the portal, the officials' inbox, the modeler and the monitoring views."""
