package helpdeskgen

// The vocabulary below is written for this project. Each group has, per
// language, subject templates, body sentences and objects. Templates use the
// slots {obj} (a group noun), {n} (a number), {product} (a product name shared
// by all groups, i.e. noise) and {date}. The group-specific words carry the
// learnable signal; greetings, closings, fillers, products and quoted replies
// are shared across groups and carry none.

type groupVocab struct {
	subjects  []string
	sentences []string
	objects   []string
}

type groupDef struct {
	name        string
	description string
	tags        []string
	// types lists ticket types with weights: the group's type distribution.
	types []weighted
	vocab map[string]groupVocab
}

type weighted struct {
	value  string
	weight int
}

type langDef struct {
	code       string
	weight     int
	greetings  []string
	closings   []string
	fillers    []string
	urgent     []string
	quoteIntro string
	firstNames []string
	lastNames  []string
	typeCues   map[string][]string
}

var products = []string{"Acme Cloud", "Acme Mobile", "Acme POS", "Acme Analytics", "the web shop", "the app", "AcmeBox"}

var companies = []string{"Nordwind GmbH", "Brightline Ltd", "Café Lumière SARL", "Soluciones Iberia SL", "Müller & Söhne KG", "Bluebird Logistics", "Atelier Rivière", "Hansen Digital", "Greenleaf Foods", "Koch Maschinenbau AG"}

var languages = []langDef{
	{
		code: "en", weight: 55,
		greetings:  []string{"Hi,", "Hello,", "Hi team,", "Dear support,", "Good morning,", "Hey there,", "Hello support team,"},
		closings:   []string{"Thanks,", "Thank you,", "Best regards,", "Kind regards,", "Cheers,", "Thanks in advance,", "Regards,"},
		fillers:    []string{"I have attached a screenshot.", "Please let me know if you need more information.", "I already checked the FAQ.", "This is the second time I write about this.", "My colleague had the same thing last week.", "I am using {product}.", "Could you please look into this?", "Any help is appreciated."},
		urgent:     []string{"This is urgent!", "Please help ASAP, we are losing customers.", "URGENT: our whole team is blocked."},
		quoteIntro: "On {date} Support wrote:",
		firstNames: []string{"James", "Emily", "Oliver", "Sophia", "Liam", "Ava", "Noah", "Mia", "Ethan", "Grace"},
		lastNames:  []string{"Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Clark", "Walker"},
		typeCues: map[string][]string{
			"Question":        {"Quick question:", "I was wondering", "How do I"},
			"Incident":        {"Since this morning", "It suddenly stopped working.", "Right now"},
			"Problem":         {"This keeps happening again and again.", "Same issue as before.", "It happens every few days."},
			"Feature Request": {"It would be great if you could add this.", "Feature suggestion:", "Please consider adding"},
			"Refund":          {"I want my money back.", "Please refund me.", "I expect a full refund."},
		},
	},
	{
		code: "de", weight: 30,
		greetings:  []string{"Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo zusammen,", "Moin,", "Liebes Support-Team,"},
		closings:   []string{"Viele Grüße,", "Mit freundlichen Grüßen,", "Danke und Gruß,", "Beste Grüße,", "VG,"},
		fillers:    []string{"Im Anhang finden Sie einen Screenshot.", "Bei Rückfragen melden Sie sich gerne.", "Die FAQ habe ich schon gelesen.", "Ich schreibe deswegen bereits zum zweiten Mal.", "Ich nutze {product}.", "Können Sie sich das bitte ansehen?", "Vielen Dank für Ihre Hilfe."},
		urgent:     []string{"Das ist dringend!", "Bitte schnellstmöglich helfen, wir verlieren Kunden.", "DRINGEND: das ganze Team kann nicht arbeiten."},
		quoteIntro: "Am {date} schrieb Support:",
		firstNames: []string{"Lukas", "Anna", "Jonas", "Lena", "Felix", "Marie", "Paul", "Sophie", "Tobias", "Julia"},
		lastNames:  []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann"},
		typeCues: map[string][]string{
			"Question":        {"Kurze Frage:", "Ich wollte fragen,", "Wie kann ich"},
			"Incident":        {"Seit heute Morgen", "Plötzlich funktioniert es nicht mehr.", "Gerade eben"},
			"Problem":         {"Das passiert immer wieder.", "Wieder dasselbe Problem wie letzte Woche.", "Das tritt alle paar Tage auf."},
			"Feature Request": {"Es wäre toll, wenn Sie das einbauen könnten.", "Verbesserungsvorschlag:", "Bitte fügen Sie hinzu"},
			"Refund":          {"Ich möchte mein Geld zurück.", "Bitte erstatten Sie mir den Betrag.", "Ich erwarte eine volle Rückerstattung."},
		},
	},
	{
		code: "fr", weight: 10,
		greetings:  []string{"Bonjour,", "Bonjour à tous,", "Madame, Monsieur,", "Salut,"},
		closings:   []string{"Merci,", "Cordialement,", "Bien à vous,", "Merci d'avance,"},
		fillers:    []string{"Vous trouverez une capture d'écran en pièce jointe.", "N'hésitez pas si vous avez besoin d'informations.", "J'utilise {product}.", "Pouvez-vous regarder s'il vous plaît ?"},
		urgent:     []string{"C'est urgent !", "Merci de faire vite, nous perdons des clients."},
		quoteIntro: "Le {date}, Support a écrit :",
		firstNames: []string{"Camille", "Louis", "Chloé", "Hugo", "Léa", "Jules"},
		lastNames:  []string{"Martin", "Bernard", "Dubois", "Laurent", "Moreau"},
		typeCues: map[string][]string{
			"Question":        {"Petite question :", "Je me demandais"},
			"Incident":        {"Depuis ce matin", "Cela ne fonctionne plus du tout."},
			"Problem":         {"Cela arrive encore et encore.", "Toujours le même problème."},
			"Feature Request": {"Ce serait bien d'ajouter cela.", "Suggestion :"},
			"Refund":          {"Je veux être remboursé.", "Merci de me rembourser."},
		},
	},
	{
		code: "es", weight: 5,
		greetings:  []string{"Hola,", "Buenos días,", "Estimado equipo,"},
		closings:   []string{"Gracias,", "Saludos,", "Un saludo,"},
		fillers:    []string{"Adjunto una captura de pantalla.", "Uso {product}.", "¿Pueden revisarlo, por favor?"},
		urgent:     []string{"¡Es urgente!", "Por favor, ayúdenme cuanto antes."},
		quoteIntro: "El {date}, Soporte escribió:",
		firstNames: []string{"Lucía", "Mateo", "Sofía", "Diego", "Valeria"},
		lastNames:  []string{"García", "Fernández", "López", "Martínez"},
		typeCues: map[string][]string{
			"Question":        {"Una pregunta:", "Quería saber"},
			"Incident":        {"Desde esta mañana", "De repente dejó de funcionar."},
			"Problem":         {"Pasa una y otra vez.", "El mismo problema de siempre."},
			"Feature Request": {"Sería genial poder hacerlo.", "Sugerencia:"},
			"Refund":          {"Quiero que me devuelvan el dinero.", "Solicito un reembolso."},
		},
	},
}

var groups = []groupDef{
	{
		name: "Billing", description: "Invoices, payments, VAT and subscription charges",
		tags:  []string{"invoice", "payment", "vat", "subscription"},
		types: []weighted{{"Question", 5}, {"Problem", 3}, {"Refund", 2}, {"Incident", 1}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Question about invoice {n}", "Wrong amount on my {obj}", "Charged twice for {obj}", "Need a copy of invoice {n}", "VAT number missing on {obj}", "Payment failed for my {obj}"},
				sentences: []string{"Invoice {n} shows the wrong amount.", "My credit card was charged twice this month.", "Please add our VAT ID to the {obj}.", "I need the billing address changed on the {obj}.", "The direct debit for the {obj} bounced.", "Why did the price of my subscription go up?", "Can you send me a PDF of the {obj}?", "The payment was declined although the card is valid."},
				objects:   []string{"invoice", "bill", "subscription charge", "credit card payment", "monthly statement"},
			},
			"de": {
				subjects:  []string{"Frage zur Rechnung {n}", "Falscher Betrag auf der {obj}", "Doppelt abgebucht: {obj}", "Kopie der Rechnung {n} benötigt", "USt-IdNr. fehlt auf der {obj}", "Zahlung fehlgeschlagen"},
				sentences: []string{"Auf Rechnung {n} steht ein falscher Betrag.", "Meine Kreditkarte wurde diesen Monat zweimal belastet.", "Bitte ergänzen Sie unsere USt-IdNr. auf der {obj}.", "Die Rechnungsadresse auf der {obj} muss geändert werden.", "Die Lastschrift für die {obj} ist zurückgegangen.", "Warum ist der Preis meines Abos gestiegen?", "Können Sie mir die {obj} als PDF schicken?"},
				objects:   []string{"Rechnung", "Abbuchung", "Abo-Rechnung", "Gutschrift", "Monatsabrechnung"},
			},
			"fr": {
				subjects:  []string{"Question sur la facture {n}", "Montant incorrect sur ma {obj}", "Prélevé deux fois"},
				sentences: []string{"La facture {n} indique un mauvais montant.", "Ma carte bancaire a été débitée deux fois.", "Merci d'ajouter notre numéro de TVA sur la {obj}.", "Le prélèvement pour la {obj} a été rejeté."},
				objects:   []string{"facture", "abonnement", "paiement"},
			},
			"es": {
				subjects:  []string{"Pregunta sobre la factura {n}", "Cobro duplicado en mi {obj}"},
				sentences: []string{"La factura {n} tiene un importe incorrecto.", "Me cobraron dos veces en la tarjeta.", "Necesito una copia de la {obj} en PDF."},
				objects:   []string{"factura", "suscripción", "pago"},
			},
		},
	},
	{
		name: "Technical Support", description: "Errors, crashes, integrations and performance",
		tags:  []string{"bug", "error", "crash", "api"},
		types: []weighted{{"Incident", 5}, {"Problem", 4}, {"Question", 2}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Error {n} when opening the {obj}", "{obj} crashes on startup", "API returns 500", "Sync not working", "The {obj} is very slow", "Cannot connect to the server"},
				sentences: []string{"I get error code {n} every time I open the {obj}.", "The {obj} crashes right after the update.", "Our API integration returns HTTP 500 since version {n}.", "The sync between the {obj} and the server hangs.", "The dashboard takes minutes to load.", "I reinstalled the {obj} but the bug is still there.", "The export to CSV produces an empty file.", "Webhook calls time out after the last release."},
				objects:   []string{"app", "dashboard", "desktop client", "integration", "browser extension", "report"},
			},
			"de": {
				subjects:  []string{"Fehler {n} beim Öffnen der {obj}", "{obj} stürzt ab", "API liefert Fehler 500", "Synchronisation funktioniert nicht", "Die {obj} ist extrem langsam"},
				sentences: []string{"Beim Öffnen der {obj} kommt jedes Mal Fehlercode {n}.", "Die {obj} stürzt nach dem Update sofort ab.", "Unsere API-Schnittstelle liefert seit Version {n} HTTP 500.", "Die Synchronisation zwischen {obj} und Server hängt.", "Das Dashboard braucht Minuten zum Laden.", "Ich habe die {obj} neu installiert, der Fehler bleibt.", "Der CSV-Export erzeugt eine leere Datei."},
				objects:   []string{"App", "Anwendung", "Schnittstelle", "Browser-Erweiterung", "Auswertung"},
			},
			"fr": {
				subjects:  []string{"Erreur {n} à l'ouverture de l'{obj}", "L'{obj} plante au démarrage", "La synchronisation ne marche pas"},
				sentences: []string{"J'ai le code d'erreur {n} à chaque ouverture de l'{obj}.", "L'{obj} plante juste après la mise à jour.", "Notre intégration API renvoie une erreur 500.", "Le tableau de bord met des minutes à charger."},
				objects:   []string{"application", "intégration", "extension"},
			},
			"es": {
				subjects:  []string{"Error {n} al abrir la {obj}", "La {obj} se cierra sola"},
				sentences: []string{"Me sale el código de error {n} al abrir la {obj}.", "La {obj} se bloquea después de la actualización.", "La integración con la API devuelve error 500."},
				objects:   []string{"aplicación", "integración"},
			},
		},
	},
	{
		name: "Shipping", description: "Deliveries, tracking and couriers",
		tags:  []string{"delivery", "tracking", "courier", "delay"},
		types: []weighted{{"Question", 4}, {"Incident", 3}, {"Problem", 2}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Where is my {obj}?", "Order {n} not delivered", "Tracking number does not work", "{obj} arrived late", "Change delivery address for order {n}"},
				sentences: []string{"My {obj} for order {n} has not arrived yet.", "The tracking number shows no updates for a week.", "The courier says the {obj} was delivered but I have nothing.", "Can I change the delivery address before dispatch?", "The package was left at the wrong door.", "When will the {obj} be shipped?", "DHL returned the parcel to the warehouse."},
				objects:   []string{"parcel", "package", "delivery", "shipment", "order"},
			},
			"de": {
				subjects:  []string{"Wo ist mein {obj}?", "Bestellung {n} nicht geliefert", "Sendungsverfolgung funktioniert nicht", "Lieferadresse für Bestellung {n} ändern"},
				sentences: []string{"Mein {obj} zur Bestellung {n} ist noch nicht angekommen.", "Die Sendungsnummer zeigt seit einer Woche keinen neuen Status.", "Laut Zusteller wurde das {obj} geliefert, ich habe aber nichts.", "Kann ich die Lieferadresse vor dem Versand ändern?", "Das Paket wurde beim falschen Nachbarn abgegeben.", "Wann wird die Lieferung verschickt?"},
				objects:   []string{"Paket", "Päckchen", "Lieferung", "Sendung"},
			},
			"fr": {
				subjects:  []string{"Où est mon {obj} ?", "Commande {n} non livrée"},
				sentences: []string{"Mon {obj} de la commande {n} n'est toujours pas arrivé.", "Le numéro de suivi ne montre aucune mise à jour.", "Le livreur dit que le colis est livré mais je n'ai rien reçu."},
				objects:   []string{"colis", "envoi"},
			},
			"es": {
				subjects:  []string{"¿Dónde está mi {obj}?", "Pedido {n} no entregado"},
				sentences: []string{"Mi {obj} del pedido {n} todavía no ha llegado.", "El número de seguimiento no se actualiza.", "El mensajero dice que lo entregó pero no tengo nada."},
				objects:   []string{"paquete", "envío"},
			},
		},
	},
	{
		name: "Accounts", description: "Login, passwords, users and profile settings",
		tags:  []string{"login", "password", "2fa", "user-management"},
		types: []weighted{{"Question", 5}, {"Incident", 3}, {"Problem", 2}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Cannot log in", "Password reset email not received", "Locked out of my {obj}", "Add a new user to our {obj}", "Change the email address of my {obj}", "Two-factor code not accepted"},
				sentences: []string{"I cannot log in to my {obj} anymore.", "The password reset email never arrives.", "My {obj} was locked after three attempts.", "Please add a new user with admin rights.", "How do I change the email address on my {obj}?", "The two-factor authentication code is rejected.", "I want to delete my {obj} and all my data.", "Our former employee still has access, please remove the user."},
				objects:   []string{"account", "profile", "user account", "login"},
			},
			"de": {
				subjects:  []string{"Login nicht möglich", "Keine E-Mail zum Passwort zurücksetzen", "{obj} gesperrt", "Neuen Benutzer anlegen", "E-Mail-Adresse im {obj} ändern"},
				sentences: []string{"Ich kann mich nicht mehr in mein {obj} einloggen.", "Die E-Mail zum Zurücksetzen des Passworts kommt nie an.", "Mein {obj} wurde nach drei Versuchen gesperrt.", "Bitte legen Sie einen neuen Benutzer mit Adminrechten an.", "Wie ändere ich die E-Mail-Adresse in meinem {obj}?", "Der Code der Zwei-Faktor-Authentifizierung wird abgelehnt.", "Ich möchte mein {obj} löschen."},
				objects:   []string{"Konto", "Benutzerkonto", "Profil"},
			},
			"fr": {
				subjects:  []string{"Impossible de me connecter", "Mot de passe oublié", "{obj} bloqué"},
				sentences: []string{"Je n'arrive plus à me connecter à mon {obj}.", "L'e-mail de réinitialisation du mot de passe n'arrive pas.", "Mon {obj} a été bloqué après trois essais."},
				objects:   []string{"compte", "profil"},
			},
			"es": {
				subjects:  []string{"No puedo iniciar sesión", "Contraseña olvidada"},
				sentences: []string{"No puedo entrar en mi {obj}.", "No recibo el correo para restablecer la contraseña.", "Mi {obj} está bloqueada."},
				objects:   []string{"cuenta", "perfil"},
			},
		},
	},
	{
		name: "Sales", description: "Quotes, plans, upgrades and new customers",
		tags:  []string{"quote", "upgrade", "pricing", "demo"},
		types: []weighted{{"Question", 7}, {"Feature Request", 1}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Quote for {n} licenses", "Upgrade to the enterprise {obj}", "Pricing for {obj}", "Request a demo", "Discount for nonprofits?"},
				sentences: []string{"We would like a quote for {n} licenses.", "What does the enterprise {obj} cost per year?", "Can we get a demo for our team next week?", "Do you offer a discount for annual prepayment?", "We are interested in upgrading our {obj}.", "Is there a volume discount above {n} seats?", "Please send me the price list and contract terms."},
				objects:   []string{"plan", "license", "package", "edition"},
			},
			"de": {
				subjects:  []string{"Angebot für {n} Lizenzen", "Upgrade auf das Enterprise-{obj}", "Preise für das {obj}", "Demo anfragen"},
				sentences: []string{"Wir hätten gern ein Angebot für {n} Lizenzen.", "Was kostet das Enterprise-{obj} pro Jahr?", "Können wir nächste Woche eine Demo für unser Team bekommen?", "Gibt es Rabatt bei jährlicher Vorauszahlung?", "Wir möchten unser {obj} erweitern.", "Bitte senden Sie mir Preisliste und Vertragsbedingungen."},
				objects:   []string{"Paket", "Lizenzmodell", "Tarif"},
			},
			"fr": {
				subjects:  []string{"Devis pour {n} licences", "Tarifs de l'offre {obj}"},
				sentences: []string{"Nous souhaitons un devis pour {n} licences.", "Combien coûte l'offre entreprise par an ?", "Pouvons-nous avoir une démo la semaine prochaine ?"},
				objects:   []string{"entreprise", "premium"},
			},
			"es": {
				subjects:  []string{"Presupuesto para {n} licencias", "Precio del {obj}"},
				sentences: []string{"Queremos un presupuesto para {n} licencias.", "¿Cuánto cuesta el {obj} empresarial al año?", "¿Podemos tener una demostración?"},
				objects:   []string{"plan", "paquete"},
			},
		},
	},
	{
		name: "Returns", description: "Returns, exchanges, damaged goods and refunds of goods",
		tags:  []string{"return", "exchange", "damaged", "rma"},
		types: []weighted{{"Refund", 5}, {"Question", 3}, {"Problem", 1}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Return of order {n}", "Item arrived damaged", "Exchange {obj} for another size", "Return label missing", "Wrong item received"},
				sentences: []string{"I want to return the {obj} from order {n}.", "The {obj} arrived broken, the box was crushed.", "Can I exchange the {obj} for a different size?", "There was no return label in the package.", "I received the wrong {obj}, I ordered blue.", "I sent the item back two weeks ago, when is the return processed?", "Please send me an RMA number."},
				objects:   []string{"item", "jacket", "shoes", "device", "product"},
			},
			"de": {
				subjects:  []string{"Rücksendung Bestellung {n}", "Ware beschädigt angekommen", "{obj} umtauschen", "Retourenschein fehlt", "Falschen Artikel erhalten"},
				sentences: []string{"Ich möchte den {obj} aus Bestellung {n} zurücksenden.", "Der {obj} kam kaputt an, der Karton war eingedrückt.", "Kann ich den {obj} gegen eine andere Größe umtauschen?", "Im Paket lag kein Retourenschein.", "Ich habe den falschen {obj} bekommen.", "Die Retoure habe ich vor zwei Wochen geschickt, wann wird sie bearbeitet?"},
				objects:   []string{"Artikel", "Schuh", "Mantel", "Gerät"},
			},
			"fr": {
				subjects:  []string{"Retour de la commande {n}", "Article arrivé endommagé"},
				sentences: []string{"Je veux retourner l'{obj} de la commande {n}.", "L'{obj} est arrivé cassé.", "Il n'y avait pas d'étiquette de retour."},
				objects:   []string{"article", "appareil"},
			},
			"es": {
				subjects:  []string{"Devolución del pedido {n}", "Artículo dañado"},
				sentences: []string{"Quiero devolver el {obj} del pedido {n}.", "El {obj} llegó roto.", "No venía la etiqueta de devolución."},
				objects:   []string{"artículo", "producto"},
			},
		},
	},
	{
		name: "Product Feedback", description: "Ideas, feature requests and product suggestions",
		tags:  []string{"feedback", "feature-request", "ux"},
		types: []weighted{{"Feature Request", 7}, {"Question", 1}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Suggestion: dark mode", "Idea for the {obj}", "Please add export to Excel", "Feedback on the new {obj}", "Missing keyboard shortcuts"},
				sentences: []string{"It would be nice to have a dark mode in the {obj}.", "I love the new {obj} but the font is too small.", "Please add an export to Excel.", "A calendar view would really help our team.", "The old {obj} layout was easier to use.", "Could you support keyboard shortcuts?", "Our team voted for this idea in the community forum."},
				objects:   []string{"editor", "layout", "design", "menu", "mobile view"},
			},
			"de": {
				subjects:  []string{"Vorschlag: Dunkelmodus", "Idee für den {obj}", "Bitte Export nach Excel", "Feedback zum neuen {obj}"},
				sentences: []string{"Ein Dunkelmodus im {obj} wäre schön.", "Der neue {obj} gefällt mir, aber die Schrift ist zu klein.", "Bitte bauen Sie einen Export nach Excel ein.", "Eine Kalenderansicht würde unserem Team sehr helfen.", "Das alte Layout war übersichtlicher.", "Könnten Sie Tastenkürzel unterstützen?"},
				objects:   []string{"Editor", "Aufbau", "Entwurf", "Menü"},
			},
			"fr": {
				subjects:  []string{"Suggestion : mode sombre", "Idée pour l'{obj}"},
				sentences: []string{"Un mode sombre dans l'{obj} serait super.", "Merci d'ajouter un export vers Excel.", "Une vue calendrier aiderait notre équipe."},
				objects:   []string{"éditeur", "interface"},
			},
			"es": {
				subjects:  []string{"Sugerencia: modo oscuro", "Idea para el {obj}"},
				sentences: []string{"Estaría bien tener modo oscuro en el {obj}.", "Por favor, añadan exportación a Excel."},
				objects:   []string{"editor", "menú"},
			},
		},
	},
	{
		name: "Security", description: "Phishing, suspicious activity, data protection and GDPR",
		tags:  []string{"phishing", "gdpr", "security", "fraud"},
		types: []weighted{{"Incident", 4}, {"Question", 3}, {"Problem", 1}},
		vocab: map[string]groupVocab{
			"en": {
				subjects:  []string{"Suspicious {obj} received", "Possible phishing", "GDPR data request", "Unknown login from another country", "Report a security vulnerability"},
				sentences: []string{"I received a suspicious {obj} asking for my password.", "Someone logged in from an unknown country last night.", "Under GDPR I request a copy of all personal data you hold.", "I think this is a phishing attempt using your logo.", "We found a security vulnerability in your {obj}.", "Please confirm whether our data was affected by the breach.", "There are unauthorized transactions I did not make."},
				objects:   []string{"email", "text message", "link", "login page"},
			},
			"de": {
				subjects:  []string{"Verdächtige {obj} erhalten", "Möglicher Phishing-Versuch", "DSGVO-Auskunftsersuchen", "Unbekannte Anmeldung aus dem Ausland"},
				sentences: []string{"Ich habe eine verdächtige {obj} bekommen, die nach meinem Passwort fragt.", "Letzte Nacht gab es eine Anmeldung aus einem unbekannten Land.", "Gemäß DSGVO verlange ich Auskunft über alle gespeicherten Daten.", "Das ist vermutlich ein Phishing-Versuch mit Ihrem Logo.", "Wir haben eine Sicherheitslücke in Ihrer {obj} gefunden.", "Bitte bestätigen Sie, ob unsere Daten vom Datenleck betroffen sind."},
				objects:   []string{"E-Mail", "SMS", "Nachricht", "Anmeldeseite"},
			},
			"fr": {
				subjects:  []string{"{obj} suspect reçu", "Demande RGPD"},
				sentences: []string{"J'ai reçu un {obj} suspect qui demande mon mot de passe.", "Conformément au RGPD, je demande une copie de mes données.", "C'est sans doute une tentative d'hameçonnage."},
				objects:   []string{"e-mail", "SMS"},
			},
			"es": {
				subjects:  []string{"{obj} sospechoso", "Solicitud RGPD"},
				sentences: []string{"Recibí un {obj} sospechoso que pide mi contraseña.", "Según el RGPD solicito una copia de mis datos.", "Creo que es un intento de phishing."},
				objects:   []string{"correo", "mensaje"},
			},
		},
	},
}
