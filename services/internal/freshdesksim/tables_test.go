package freshdesksim

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// TestValidatorTables pins which keys the validator tables accept: the
// updatable ticket fields of the reference (section 5, without attachments),
// the note fields, and a validator for every custom field type.
func TestValidatorTables(t *testing.T) {
	want := []string{
		"name", "requester_id", "email", "phone", "facebook_id", "twitter_id", "unique_external_id",
		"subject", "type", "status", "priority", "description", "source", "tags", "custom_fields",
		"responder_id", "group_id", "product_id", "company_id", "email_config_id", "parent_id",
		"due_by", "fr_due_by", "internal_agent_id", "internal_group_id", "lookup_parameter",
	}
	if got := slices.Sorted(maps.Keys(ticketFields)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("ticket fields %v, want %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(noteFields)); !slices.Equal(got, []string{"body", "incoming", "notify_emails", "private", "user_id"}) {
		t.Errorf("note fields %v", got)
	}
	for _, cf := range newFieldCatalog(time.Now()).custom {
		if customTypes[cf.typ] == nil {
			t.Errorf("no validator for %s (%s)", cf.name, cf.typ)
		}
	}
}
