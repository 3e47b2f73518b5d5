// Field tables of the hand-written decoders (ticketdec.go), one case per
// struct tag in types.go. TestDecoderCoversAllFields keeps them in sync.

package freshdesk

// ticketFolded maps the folded JSON names of Ticket to the exact ones.
var ticketFolded = foldTable("id", "subject", "description", "description_text", "type", "status", "priority", "source", "tags", "requester_id", "responder_id", "group_id", "company_id", "product_id", "email_config_id", "internal_agent_id", "internal_group_id", "cc_emails", "fwd_emails", "reply_cc_emails", "ticket_cc_emails", "to_emails", "support_email", "spam", "deleted", "is_escalated", "fr_escalated", "nr_escalated", "custom_fields", "attachments", "association_type", "associated_tickets_count", "created_at", "updated_at", "due_by", "fr_due_by", "nr_due_by", "stats", "requester", "source_additional_info", "structured_description")

// field decodes the value of the member named key (an exact JSON name)
// into t; it returns false for unknown keys.
func (t *Ticket) field(d *jsonReader, key string) (bool, error) {
	switch key {
	case "id":
		return true, d.setInt64(&t.ID, "id")
	case "subject":
		return true, d.setString(&t.Subject, "subject")
	case "description":
		return true, d.setString(&t.Description, "description")
	case "description_text":
		return true, d.setString(&t.DescriptionText, "description_text")
	case "type":
		return true, d.setStringPtr(&t.Type, "type")
	case "status":
		return true, d.setInt(&t.Status, "status")
	case "priority":
		return true, d.setInt(&t.Priority, "priority")
	case "source":
		return true, d.setInt(&t.Source, "source")
	case "tags":
		return true, d.setStrings(&t.Tags, "tags")
	case "requester_id":
		return true, d.setInt64Ptr(&t.RequesterID, "requester_id")
	case "responder_id":
		return true, d.setInt64Ptr(&t.ResponderID, "responder_id")
	case "group_id":
		return true, d.setInt64Ptr(&t.GroupID, "group_id")
	case "company_id":
		return true, d.setInt64Ptr(&t.CompanyID, "company_id")
	case "product_id":
		return true, d.setInt64Ptr(&t.ProductID, "product_id")
	case "email_config_id":
		return true, d.setInt64Ptr(&t.EmailConfigID, "email_config_id")
	case "internal_agent_id":
		return true, d.setInt64Ptr(&t.InternalAgentID, "internal_agent_id")
	case "internal_group_id":
		return true, d.setInt64Ptr(&t.InternalGroupID, "internal_group_id")
	case "cc_emails":
		return true, d.setStrings(&t.CCEmails, "cc_emails")
	case "fwd_emails":
		return true, d.setStrings(&t.FwdEmails, "fwd_emails")
	case "reply_cc_emails":
		return true, d.setStrings(&t.ReplyCCEmails, "reply_cc_emails")
	case "ticket_cc_emails":
		return true, d.setStrings(&t.TicketCCEmails, "ticket_cc_emails")
	case "to_emails":
		return true, d.setStrings(&t.ToEmails, "to_emails")
	case "support_email":
		return true, d.setStringPtr(&t.SupportEmail, "support_email")
	case "spam":
		return true, d.setBool(&t.Spam, "spam")
	case "deleted":
		return true, d.setBool(&t.Deleted, "deleted")
	case "is_escalated":
		return true, d.setBool(&t.IsEscalated, "is_escalated")
	case "fr_escalated":
		return true, d.setBool(&t.FrEscalated, "fr_escalated")
	case "nr_escalated":
		return true, d.setBool(&t.NrEscalated, "nr_escalated")
	case "custom_fields":
		return true, d.setCustomFields(&t.CustomFields)
	case "attachments":
		return true, d.setAttachments(&t.Attachments)
	case "association_type":
		return true, d.setIntPtr(&t.AssociationType, "association_type")
	case "associated_tickets_count":
		return true, d.setIntPtr(&t.AssociatedTicketsCount, "associated_tickets_count")
	case "created_at":
		return true, d.setTime(&t.CreatedAt)
	case "updated_at":
		return true, d.setTime(&t.UpdatedAt)
	case "due_by":
		return true, d.setTimePtr(&t.DueBy)
	case "fr_due_by":
		return true, d.setTimePtr(&t.FrDueBy)
	case "nr_due_by":
		return true, d.setTimePtr(&t.NrDueBy)
	case "stats":
		return true, setStd(d, &t.Stats)
	case "requester":
		return true, setStd(d, &t.Requester)
	case "source_additional_info":
		return true, d.setRaw(&t.SourceAdditionalInfo)
	case "structured_description":
		return true, d.setRaw(&t.StructuredDescription)
	}
	return false, nil
}

// attachmentFolded maps the folded JSON names of Attachment to the exact ones.
var attachmentFolded = foldTable("id", "name", "content_type", "size", "file_size", "attachment_url", "created_at", "updated_at")

// field decodes the value of the member named key (an exact JSON name)
// into t; it returns false for unknown keys.
func (t *Attachment) field(d *jsonReader, key string) (bool, error) {
	switch key {
	case "id":
		return true, d.setInt64(&t.ID, "id")
	case "name":
		return true, d.setString(&t.Name, "name")
	case "content_type":
		return true, d.setString(&t.ContentType, "content_type")
	case "size":
		return true, d.setInt64(&t.Size, "size")
	case "file_size":
		return true, d.setInt64(&t.FileSize, "file_size")
	case "attachment_url":
		return true, d.setString(&t.AttachmentURL, "attachment_url")
	case "created_at":
		return true, d.setTime(&t.CreatedAt)
	case "updated_at":
		return true, d.setTime(&t.UpdatedAt)
	}
	return false, nil
}
