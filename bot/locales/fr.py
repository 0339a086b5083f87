"""French catalog: the service's working language, and the fallback for any other."""

from __future__ import annotations

from collections.abc import Mapping

from ..kinds import Kind
from ..policy.convention import Role
from .keys import Msg

MESSAGES: Mapping[Msg, str] = {
    Msg.AUDIT_TITLE: "Registre Vigie — incident {incident}",
    Msg.AUDIT_DRILL: "EXERCICE — ceci n'est pas un incident réel",
    Msg.AUDIT_COUNT: "{n} enregistrement(s)",
    Msg.AUDIT_CHAIN_OK: "Chaîne d'intégrité : vérifiée",
    Msg.AUDIT_CHAIN_BAD: "Chaîne d'intégrité : NON VÉRIFIÉE — {reason}",
    Msg.AUDIT_BY: "par",
    Msg.AUDIT_SEQ: "n° {seq}",
}

KINDS: Mapping[Kind, str] = {
    Kind.TRIGGER: "Déclenchement",
    Kind.DECISION: "Décision",
    Kind.REFUSAL: "Refus",
    Kind.CONFIRMATION_REQUESTED: "Confirmation demandée",
    Kind.CONFIRMATION: "Confirmation",
    Kind.ACTIVATION: "Accès ouvert",
    Kind.JOINED: "Déclenchement rattaché",
    Kind.EXTENSION: "Prolongation",
    Kind.REMINDER: "Rappel",
    Kind.END: "Fin",
    Kind.EXPIRY: "Expiration",
    Kind.CLOSURE_REPORT: "Rapport de clôture",
    Kind.RECORDING_REQUEST: "Demande d'enregistrement",
    Kind.LINK_ISSUED: "Lien émis",
    Kind.LOGIN_OK: "Connexion réussie",
    Kind.LOGIN_FAILED: "Échec de connexion",
    Kind.LOGIN_LOCKED: "Compte bloqué",
    Kind.STREAM_OPENED: "Flux ouvert",
    Kind.STREAM_CLOSED: "Flux fermé",
    Kind.ROOM_ERROR: "Erreur de salon",
    Kind.AUTHORISATION_WARNING: "Alerte d'échéance de l'autorisation",
    Kind.WEBHOOK_REFUSED: "Webhook refusé",
    Kind.SIA_MESSAGE: "Message de la centrale d'alarme",
    Kind.SIA_REFUSED: "Message de centrale refusé",
    Kind.PANEL_SILENT: "Centrale d'alarme muette",
    Kind.PANEL_BACK: "Centrale d'alarme revenue",
}

ROLES: Mapping[Role, str] = {
    Role.SECURITY_CHIEF: "chef de la sécurité",
    Role.DIRECTOR: "directeur",
    Role.OPERATOR: "opérateur vidéo",
    Role.CIC_OFFICER: "officier du CIC",
    Role.FIELD_COMMANDER: "commandant des opérations",
    Role.VIEWER: "agent habilité",
}
