"""French catalog: the service's working language, and the fallback for any other."""

from __future__ import annotations

from collections.abc import Mapping

from ..kinds import Kind
from ..policy.convention import Org, Role
from ..policy.reasons import Why
from .keys import Msg

MESSAGES: Mapping[Msg, str] = {
    Msg.AUDIT_TITLE: "Registre Vigie — incident {incident}",
    Msg.AUDIT_DRILL: "EXERCICE — ceci n'est pas un incident réel",
    Msg.AUDIT_COUNT: "{n} enregistrement(s)",
    Msg.AUDIT_CHAIN_OK: "Chaîne d'intégrité : vérifiée",
    Msg.AUDIT_CHAIN_BAD: "Chaîne d'intégrité : NON VÉRIFIÉE — {reason}",
    Msg.AUDIT_BY: "par",
    Msg.AUDIT_SEQ: "n° {seq}",
    # the rooms: posts about an incident (bot/messages.py)
    Msg.WHO_SYSTEM: "le système",
    Msg.DRILL_PREFIX: "EXERCICE — ",
    Msg.ORIGIN_ALARM: "alarme « {alarm_type} » de {who}{where}",
    Msg.ORIGIN_PERSON: "{org} : {who}{extra}",
    Msg.LINK_HEAD: "🚨 ACCÈS VIDÉO OUVERT — {category} [{incident}]",
    Msg.LINK_TRIGGERED: "Déclenché à {at} — {origin}",
    Msg.LINK_UNTIL: "Accès des agents habilités jusqu'à {until} (encore {remaining} min)",
    Msg.CONFIRMED_BY: "Confirmé par {who}",
    Msg.EXTENDED_BY: "Prolongé par {who}",
    Msg.LINK_URL: "Lien (personnel, mot de passe requis) : ",
    Msg.LIVE_ONLY: "Direct uniquement : aucun enregistrement par ce lien.",
    Msg.CONFIRMER_ANY: "une personne habilitée (exploitant ou police)",
    Msg.CONFIRMER_COUNTERPARTY: "la police",
    Msg.CONFIRM_HEAD: "⚠️ ALERTE À CONFIRMER — {category} [{incident}]",
    Msg.CONFIRM_ORIGIN: "Origine : {origin}",
    Msg.CONFIRM_BEFORE: "À confirmer par {who} avant {until} : /confirm {incident}",
    Msg.CONFIRM_BUTTON: "✅ Confirmer l'accès",
    Msg.CONFIRMED: "✅ Alerte {incident} confirmée par {who} à {at}.",
    Msg.NOT_CONFIRMED: "⏹ Alerte {incident} non confirmée dans le délai : aucun accès n'a été ouvert.",
    Msg.REMINDER: "⏳ L'accès {incident} se termine dans {minutes} min ({until}). Pour prolonger : /extend 30",
    Msg.EXTENDED: "➕ Accès {incident} prolongé jusqu'à {until} par {who}.",
    Msg.CLOSED_ENDED: "fin demandée par {who}",
    Msg.CLOSED_EXPIRED: "durée écoulée",
    Msg.CLOSED_LAPSED: "autorisation préfectorale expirée",
    Msg.CLOSED_NOT_CONFIRMED: "alerte non confirmée",
    Msg.NOBODY: "aucun",
    Msg.CLOSURE_HEAD: "🔒 ACCÈS TERMINÉ — {category} [{incident}]",
    Msg.CLOSURE_REASON: "Motif : {reason} à {at}",
    Msg.CLOSURE_TRIGGER: "Déclenchement : {at}, {origin}",
    Msg.CLOSURE_OPEN: "Accès ouvert : {start} → {end} ({minutes} min)",
    Msg.CLOSURE_VIEWERS: "Agents connectés : {seen}",
    Msg.CLOSURE_STREAMS: "Flux vidéo ouverts : {streams}",
    Msg.CLOSURE_REVOKED: "Liens et sessions révoqués. Registre : {records} entrées pour cet incident.",
    Msg.CLOSURE_ANCHOR: "Empreinte du registre à la clôture : {anchor}",
    Msg.AUTHORISATION_WARNING: "⚠️ L'autorisation préfectorale {reference} expire le {expires:%d/%m/%Y}. Sans renouvellement, Vigie refusera toute transmission après cette date.",
    Msg.GUESSING_NOTICE: "⚠️ Mot de passe de {name} ({id}) visé : {failures} échec(s) de connexion en 15 min depuis {clients} adresse(s) réseau. Les essais sont ralentis ; {name} peut toujours se connecter. Si ce ne sont pas des fautes de frappe, le lien a fuité : /fin puis /alerte donnent un nouveau lien. Lever ses blocages : /debloquer {id}",
    Msg.REFUSED: "Refusé : {reason}",

    # the desk: answers to commands and /status (bot/desk.py)
    Msg.STATUS_NONE: "Aucun incident ouvert.",
    Msg.STATUS_DRILL: "EXERCICE ",
    Msg.STATUS_PENDING: "{drill}{incident} — {category}: en attente de confirmation jusqu'à {until}",
    Msg.STATUS_ACTIVE: "{drill}{incident} — {category}: accès ouvert jusqu'à {until} (encore {left} min)",
    Msg.STATUS_ROOM_OK: "Salon {room}: ok",
    Msg.STATUS_ROOM_FAILING: "Salon {room}: EN ÉCHEC : {error}",
    Msg.STATUS_AUTHORISATION: "Autorisation préfectorale {reference} valable jusqu'au {expires:%d/%m/%Y}",
    Msg.ENDED_REPLY: "Accès {incident} terminé.",
    Msg.JOINED_REPLY: "L'incident {incident} est déjà ouvert : votre signalement y est rattaché.",
    Msg.OPENED_REPLY: "{drill}Accès {incident} ouvert jusqu'à {until} ; le lien est publié dans les salons.",
    Msg.UNLOCKED_REPLY: "Connexion de {name} débloquée ({locks} adresse(s) bloquée(s)).",

    # alarm panels (bot/sia/receiver.py)
    Msg.PANEL_SILENT: "⚠️ La centrale d'alarme « {label} » ne répond plus : aucun message depuis {since} ({minutes} min ; un test est attendu toutes les {every} s). Ses alarmes n'arrivent plus à Vigie : prévenez l'installateur. La commande /alert reste disponible.",
    Msg.PANEL_BACK: "✅ La centrale d'alarme « {label} » répond de nouveau (silencieuse depuis {since}).",

    # commands, in every room (bot/commands.py, bot/console.py, bot/telegram/, bot/matrix/)
    Msg.MENU_ALERT: "Déclencher l'accès vidéo (événement grave)",
    Msg.MENU_CONFIRM: "Confirmer une alerte en attente",
    Msg.MENU_STATUS: "État de l'accès, des salons et caméras",
    Msg.MENU_EXTEND: "Prolonger l'accès (minutes)",
    Msg.MENU_END: "Mettre fin à l'accès",
    Msg.MENU_DRILL: "Lancer un exercice",
    Msg.MENU_UNLOCK: "Débloquer la connexion d'une personne",
    Msg.MENU_HELP: "Aide",
    Msg.HELP: "Vigie — accès de la police aux caméras du site, selon la convention.\n/alerte <catégorie> [précisions] — ouvrir l'accès. Catégories : {categories}\n/confirmer [N°] — confirmer une alerte en attente\n/statut — état de l'accès, des salons et caméras\n/prolonger <minutes> [N°] — prolonger l'accès\n/fin [N°] — mettre fin à l'accès\n/exercice [catégorie] — lancer un exercice (marqué EXERCICE)\n/debloquer <personne> — lever un blocage de connexion (identifiant ou RIO)\n/aide — cette aide",
    Msg.WHICH_CATEGORY: "Quelle catégorie ? /alerte <catégorie> [précisions] :",
    Msg.EXTEND_USAGE: "Usage : /prolonger <minutes> [N°], par exemple /prolonger 30",
    Msg.UNKNOWN_COMMAND: "Commande inconnue /{command}. /aide donne la liste des commandes.",
    Msg.TYPE_HELP: "(tapez /aide pour la liste des commandes)",
    Msg.INTERNAL_ERROR: "Erreur interne : voir le journal.",
    Msg.INTERNAL_ERROR_SHORT: "Erreur interne.",
    Msg.LATE_NOT_APPLIED: "Votre commande /{command} est parvenue à Vigie {minutes} min après son envoi (Vigie était indisponible) : elle n'a PAS été appliquée. Renvoyez-la si elle est toujours d'actualité.",
    Msg.CATEGORY_BUTTONS: "Quel événement grave ? Le bouton vaut /alerte <catégorie> par la personne qui appuie.",
    Msg.CATEGORY_CHOSEN: "Catégorie choisie par {name} : {label}\n→ {answer}",
    Msg.STRANGER_ENCRYPTED: "⚠️ {user} n'est pas sur la liste de la convention : Vigie ne lui transmet rien (ses appareils ne reçoivent pas les clés).",
    Msg.STRANGER_CLEAR: "⚠️ {user} n'est pas sur la liste de la convention et ce salon n'est pas chiffré : cette personne peut lire ce que Vigie publie ici. Retirez-la du salon.",
    Msg.MATRIX_CONFIRM_HINT: "Pour confirmer : répondez /confirm à ce message ou réagissez ✅.",
    Msg.MATRIX_REDACTED: "Retiré par Vigie",

    # cameras (bot/media/)
    Msg.CAMERAS_NONE: "Caméras : aucune dans le périmètre",
    Msg.CAMERAS_ONLINE: "Caméras : {online}/{total} en ligne",
    Msg.CAMERAS_OFFLINE: " — hors ligne : {names}",
    Msg.MOSAIC_CAPTION: "{drill}Mosaïque {at:%H:%M} — {online}/{total} caméras en ligne",

    # the console room of the demo (bot/console.py)
    Msg.CONSOLE_EDITED: "[Vigie #{ref} mis à jour] {text}",
    Msg.CONSOLE_REMOVED: "[Vigie #{ref} retiré]",
    Msg.CONSOLE_TILE: "[Vigie #{ref} tuile] {caption} — {kib} ko, sha256 {digest}",
    Msg.CONSOLE_TILE_REPLACED: "[Vigie #{ref} tuile remplacée] {caption} — {kib} ko, sha256 {digest}",

    # the live page (bot/access.py, bot/web/); its HTML templates in bot/web/static are French
    Msg.LOGIN_WRONG: "Identité ou mot de passe incorrect.",
    Msg.LOGIN_NOT_HABILITATED: "Cette personne n'est pas habilitée à recevoir les images de vidéoprotection (CSI L252-3).",
    Msg.LOGIN_LOCKED: "Trop d'essais infructueux depuis cette adresse réseau : connexion bloquée pendant {minutes} min.",
    Msg.LOGIN_NOW_LOCKED: " Trop d'essais depuis cette adresse réseau : connexion bloquée pendant {minutes} min.",
    Msg.LOGIN_ATTEMPTS_LEFT: " Encore {left} essai(s) avant blocage.",
    Msg.PAGE_FORBIDDEN_TITLE: "Lien invalide",
    Msg.PAGE_FORBIDDEN: "Ce lien n'est pas valide. Ouvrez le lien publié dans le salon de l'incident.",
    Msg.PAGE_GONE_TITLE: "L'accès est terminé",
    Msg.PAGE_GONE: "L'accès aux images pour cet incident est terminé, ou ce lien a expiré. Si l'incident se poursuit, ouvrez le dernier lien publié dans le salon.",
    Msg.PAGE_ENDED: "L'accès est terminé.",
    Msg.PAGE_NO_SESSION_TITLE: "Identification requise",
    Msg.PAGE_NO_SESSION: "Pour voir les images, ouvrez le lien publié dans le salon de l'incident et identifiez-vous.",
    Msg.PAGE_BAD_FORM: "Le formulaire reçu est invalide : saisissez votre identifiant et votre mot de passe.",
    Msg.PAGE_NO_CAMERA: "Aucune caméra dans le périmètre de la convention.",
    Msg.PAGE_DRILL: "EXERCICE — ceci n'est pas un incident réel",
    Msg.PAGE_UNKNOWN_CAMERA: "Caméra inconnue.",
    Msg.PAGE_BAD_QUALITY: "Qualité vidéo inconnue : « hd » ou « saver » (économie de données).",
    Msg.PAGE_ORIGIN_REFUSED: "Origine refusée.",
    Msg.PAGE_CROSS_SITE_TITLE: "Requête refusée",
    Msg.PAGE_CROSS_SITE: "Cette demande ne vient pas de la page de Vigie : ouvrez le lien publié dans le salon.",

    # the live page's media routes (bot/web/media.py)
    Msg.PAGE_MOSAIC_UNAVAILABLE: "Mosaïque indisponible, nouvel essai…",
    Msg.PAGE_SIGN_IN: "Identification requise.",

    # answers to an alarm webhook's sender, English first (bot/alarms/)
    Msg.HOOK_BAD_SIGNATURE: "Signature invalide.",
    Msg.HOOK_MISSING_HEADERS: "En-tête webhook-id, webhook-timestamp ou webhook-signature manquant.",
    Msg.HOOK_STALE_TIMESTAMP: "webhook-timestamp hors de la fenêtre acceptée ; vérifiez l'horloge de l'émetteur.",
    Msg.HOOK_BAD_TIMESTAMP: "webhook-timestamp doit être en secondes Unix.",
    Msg.HOOK_BAD_ID: "webhook-id dépasse {max_id} caractères.",
    Msg.HOOK_BAD_JSON: "Le corps n'est pas du JSON valide.",
    Msg.HOOK_BAD_BODY: "Le corps doit être un objet JSON.",
    Msg.HOOK_TOO_LARGE: "Corps trop volumineux.",
    Msg.HOOK_UNKNOWN_SOURCE: "Source d'alarme inconnue.",
    Msg.HOOK_DUPLICATE: "Déjà reçu.",
    Msg.HOOK_DUPLICATE_KEY: "Une même clé figure deux fois dans le corps.",
    Msg.HOOK_REFUSED: "Alarme refusée.",

    # the registre's check and the audit command, both languages at once (bot/audit_chain.py, bot/audit_cli.py)
    Msg.CHAIN_RECORD: "enregistrement {seq} : {problem}",
    Msg.CHAIN_MISSING: "manquant (supprimé ; n° {found} trouvé à sa place)",
    Msg.CHAIN_UNEXPECTED: "numéro inattendu {found} (inséré ou renuméroté)",
    Msg.CHAIN_UNREADABLE: "contenu illisible ou non canonique (modifié)",
    Msg.CHAIN_LINK_BROKEN: "lien de chaîne rompu (enregistrement précédent supprimé, inséré ou déplacé)",
    Msg.CHAIN_HASH_MISMATCH: "empreinte invalide (modifié)",
    Msg.CHAIN_HEAD_MISSING: "en-tête du registre absent (supprimé)",
    Msg.CHAIN_TRUNCATED: "manquant (registre tronqué : l'en-tête annonce {head} enregistrements, {count} trouvés)",
    Msg.CHAIN_ADDED: "ajouté hors registre (l'en-tête s'arrête à {head})",
    Msg.CHAIN_REPLACED: "ne correspond pas à l'en-tête du registre (remplacé)",
    Msg.CHAIN_OK: "chaîne intacte, {count} enregistrements",
    Msg.CLI_NOT_FOUND: "Registre introuvable : {db} (aucun fichier créé)",
    Msg.CLI_UNREADABLE: "Registre illisible : {db} ({error})",
    Msg.CLI_FAILED: "ÉCHEC",
    Msg.CLI_ANCHOR_MISSING: "empreinte {anchor} introuvable : le registre a été réécrit depuis ce rapport de clôture",
    Msg.CLI_ANCHOR_INVALID: "empreinte {anchor} invalide : recopiez les 16 chiffres hexadécimaux du rapport de clôture",
    Msg.CLI_OK: "OK: {count} enregistrements, chaîne intacte{anchors}",
    Msg.CLI_ANCHORS_FOUND: ", {n} empreinte(s) de clôture retrouvée(s)",
    Msg.CLI_UNKNOWN_INCIDENT: "Incident inconnu : {incident} (connus : {known})",
    Msg.CLI_NONE: "aucun",
    Msg.CLI_EXPORT_FAILED: "Export impossible : {error}",

    # text drawn into pictures, in the service's first language (bot/media/tiles.py)
    Msg.IMAGE_DRILL: "EXERCICE",
    Msg.IMAGE_NO_CAMERA: "Aucune caméra",
    Msg.IMAGE_TITLE_NO_CAMERA: "{title} — aucune caméra",
    Msg.PAGE_LOGIN_TITLE: "Vigie — Qui êtes-vous ?",

    # the registre file itself (bot/audit.py)
    Msg.AUDIT_EXPORT_DRILL: "EXERCICE",
    Msg.AUDIT_NOT_A_REGISTRE: "{path} : pas un registre Vigie",
    Msg.AUDIT_UNREADABLE_RECORD: "enregistrement {seq} illisible ({error}) ; lancez `audit verify`",

    # the registre's grouped refusals (bot/refusals.py)
    Msg.OTHER_CLIENTS: "autres clients",
}

REASONS: Mapping[Why, str] = {
    Why.UNKNOWN_PERSON: "Vous n'êtes pas sur la liste de la convention.",
    Why.NOT_GRAVE: "« {shown} » n'est pas une catégorie d'événement grave prévue par la convention. "
    "Catégories acceptées : {accepted}.",
    Why.NOT_INITIATOR: "Votre rôle ({role}) ne permet pas de déclencher l'accès.",
    Why.INITIATOR_OK: "{org} par {name}",
    Why.UNKNOWN_SOURCE: "Source d'alarme inconnue.",
    Why.UNMAPPED_ALARM: "Type d'alarme « {alarm_type} » non prévu pour la source {source}.",
    Why.ALARM_OK: "alarme {alarm_type} de {source}",
    Why.GRAVE_CATEGORY: "catégorie grave : {category}",
    Why.AUTHORISATION_LAPSED: "L'autorisation préfectorale {reference} a expiré le {expires:%d/%m/%Y} : "
    "aucune transmission n'est possible.",
    Why.JOINED: "rattaché à l'incident {incident}",
    Why.NEEDS_CONFIRMATION: "confirmation requise",
    Why.NOT_PENDING: "Aucune alerte n'attend de confirmation.",
    Why.NOT_ACTIVE: "Aucun accès n'est en cours.",
    Why.CONFIRM_WINDOW_LAPSED: "Le délai de confirmation est dépassé.",
    Why.SELF_CONFIRM: "La confirmation doit venir d'une autre personne que le déclencheur.",
    Why.COUNTERPARTY_REQUIRED: "La confirmation doit venir de l'autre partie à la convention.",
    Why.NOT_ALLOWED_CONFIRM: "Votre rôle ne permet pas de confirmer une alerte.",
    Why.NOT_ALLOWED_EXTEND: "Votre rôle ne permet pas de prolonger l'accès.",
    Why.NOT_ALLOWED_END: "Votre rôle ne permet pas de mettre fin à l'accès.",
    Why.AT_MAXIMUM: "La durée maximale prévue par la convention est déjà atteinte.",
    Why.BAD_EXTENSION: "La prolongation doit être un nombre de minutes positif.",
    Why.WRONG_ROOM: "Ce salon n'est pas prévu par la convention.",
    Why.NOT_DRILL_ROLE: "Votre rôle ne permet pas de lancer un exercice.",
    Why.NO_SUCH_INCIDENT: "Aucun incident ouvert ne porte ce numéro.",
    Why.RECORDING_REFUSED: "Vigie ne permet aucun enregistrement : la police ne voit que le direct. Un enregistrement "
    "ne peut être extrait que sur réquisition judiciaire adressée à l'exploitant (responsable sécurité), qui conserve "
    "les images au plus un mois (CSI L252-5). Votre demande est inscrite au registre.",
    Why.CAMERA_CONTROL_REFUSED: "La commande des caméras n'est pas ouverte : la convention ne la prévoit qu'en cas de "
    "catastrophe déclarée.",
    Why.NOT_UNLOCK_ROLE: "Votre rôle ne permet pas de débloquer une connexion.",
    Why.UNLOCK_WHO: "Qui débloquer ? /debloquer <identifiant ou RIO> d'une personne de la convention.",
}

ORGS: Mapping[Org, str] = {
    Org.VENUE: "demande de l'exploitant",
    Org.POLICE: "initiative de la police",

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
    Kind.LOGIN_LOCKED: "Poste bloqué pour cette personne",
    Kind.LOGIN_UNLOCKED: "Connexion débloquée",
    Kind.PASSWORD_GUESSING: "Mot de passe visé",
    Kind.STREAM_OPENED: "Flux ouvert",
    Kind.STREAM_CLOSED: "Flux fermé",
    Kind.ROOM_ERROR: "Erreur de salon",
    Kind.LATE_COMMAND: "Commande reçue en retard",
    Kind.AUTHORISATION_WARNING: "Alerte d'échéance de l'autorisation",
    Kind.WEBHOOK_REFUSED: "Webhook refusé",
    Kind.REFUSALS: "Refus groupés (client, minute)",
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
