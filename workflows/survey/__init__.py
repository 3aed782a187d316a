"""Satisfaction surveys (CSAT): one SurveyWorkflow per closed ticket (id `survey-<ticket>`), started by the ticket as
an abandoned child; it sends the customer a signed link, waits for the answer until it expires, keeps the score.

`state` is what a survey is, `rules` the pure survey, `links` the signed tokens; `workflow` the durable shell (not
imported here). Import `rules` as `workflows.survey.rules` (it needs the ticket's modules, which need `state`)."""

from workflows.survey.links import SurveyLink, TokenRejected, sign, verify
from workflows.survey.state import Answered, SurveyAnswer, SurveyState, survey_workflow_id

__all__ = ["Answered", "SurveyAnswer", "SurveyLink", "SurveyState", "TokenRejected", "sign", "survey_workflow_id",
           "verify"]
