package freshdesksim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
)

// goldenRequests are answers pinned byte for byte (goldenWant): validation
// errors in Freshdesk's order and wording in full, 200 bodies by hash, item
// count and next link. The values were recorded with the code before the
// validators and list filters became tables; GOLDEN_RECORD=1 -v prints them.
var goldenRequests = []struct {
	name, method, path, body string
}{
	{"update all bad", "PUT", "/api/v2/tickets/1", `{"status":"x","priority":9,"source":0,"type":3,"subject":"","description":5,"tags":[1],"group_id":"g","responder_id":99,"internal_group_id":-1,"internal_agent_id":1.5,"product_id":"p","company_id":0,"parent_id":"x","requester_id":null,"email_config_id":null,"due_by":"tomorrow","fr_due_by":7,"email":"no at","name":7,"phone":1,"facebook_id":true,"twitter_id":[],"unique_external_id":{},"lookup_parameter":null,"custom_fields":{"cf_vip":"yes","cf_language":1,"cf_nope":1,"cf_customer_number":"n"},"attachments":[],"zzz":1,"aaa":1}`},
	{"update long values", "PUT", "/api/v2/tickets/1", `{"subject":"` + longString(256) + `","tags":["` + longString(256) + `"],"email":"` + longString(250) + `@x.example","custom_fields":{"cf_product":"` + longString(300) + `","cf_since":"2024-13-01"}}`},
	{"update type null ok", "PUT", "/api/v2/tickets/1", `{"type":null,"group_id":null,"responder_id":null,"tags":["a","a","b"]}`},
	{"create missing", "POST", "/api/v2/tickets", `{"priority":"1"}`},
	{"create bad requester", "POST", "/api/v2/tickets", `{"subject":"s","requester_id":123}`},
	{"list all bad", "GET", "/api/v2/tickets?filter=x&requester_id=a&company_id=-2&updated_since=yesterday&order_by=id&order_type=up&email=x&unique_external_id=e", ""},
	{"list bad page", "GET", "/api/v2/tickets?page=0&filter=x", ""},
	{"list page cap", "GET", "/api/v2/tickets?page=301", ""},
	{"list bad per_page", "GET", "/api/v2/tickets?per_page=101", ""},
	{"list bad include", "GET", "/api/v2/tickets?include=x&filter=y", ""},
	{"list unknown params", "GET", "/api/v2/tickets?zz=1&aa=2&filter=x", ""},
	{"list new_and_my_open", "GET", "/api/v2/tickets?filter=new_and_my_open&include=stats,requester", ""},
	{"list spam", "GET", "/api/v2/tickets?filter=spam", ""},
	{"list deleted", "GET", "/api/v2/tickets?filter=deleted&updated_since=2000-01-01", ""},
	{"list watching", "GET", "/api/v2/tickets?filter=watching", ""},
	{"list external id", "GET", "/api/v2/tickets?unique_external_id=x", ""},
	{"list by email", "GET", "/api/v2/tickets?email={EMAIL}&include=description", ""},
	{"list by email and since", "GET", "/api/v2/tickets?email={EMAIL}&updated_since=2000-01-01&order_by=updated_at", ""},
	{"list by requester in window", "GET", "/api/v2/tickets?requester_id={REQ}", ""},
	{"list by company in window", "GET", "/api/v2/tickets?company_id={COMPANY}", ""},
	{"list by unknown email", "GET", "/api/v2/tickets?email=nobody@example.com", ""},
	{"list by requester", "GET", "/api/v2/tickets?requester_id={REQ}&order_type=asc&updated_since=2000-01-01", ""},
	{"list by company", "GET", "/api/v2/tickets?company_id={COMPANY}&updated_since=2000-01-01", ""},
	{"list due_by", "GET", "/api/v2/tickets?order_by=due_by&per_page=3&page=2", ""},
	{"list status asc", "GET", "/api/v2/tickets?order_by=status&order_type=asc&per_page=4", ""},
	{"list updated desc", "GET", "/api/v2/tickets?order_by=updated_at&updated_since=2025-03-01T00:00:00Z&per_page=2&page=2", ""},
	{"list default", "GET", "/api/v2/tickets?per_page=5", ""},
	{"note all bad", "POST", "/api/v2/tickets/1/notes", `{"body":" ","private":"yes","incoming":1,"notify_emails":["x"],"user_id":-1,"zz":1}`},
	{"note bad types", "POST", "/api/v2/tickets/1/notes", `{"body":1,"notify_emails":"x","user_id":"u"}`},
	{"note missing body", "POST", "/api/v2/tickets/1/notes", `{"private":false}`},
	{"ticket fields", "GET", "/api/v2/ticket_fields", ""},
	{"ticket fields by type", "GET", "/api/v2/ticket_fields?type=custom_dropdown", ""},
	{"update custom bad", "PUT", "/api/v2/tickets/2", `{"custom_fields":{"cf_order_number":5,"cf_callback_date":"2024-13-01","cf_customer_number":1.5,"cf_product_area":"nope","cf_vip":null,"cf_language":true}}`},
	{"update custom long", "PUT", "/api/v2/tickets/2", `{"custom_fields":{"cf_order_number":"` + longString(300) + `","cf_callback_date":7,"cf_customer_number":"7","cf_vip":1}}`},
	{"update custom ok", "PUT", "/api/v2/tickets/2", `{"custom_fields":{"cf_order_number":"A-1","cf_callback_date":"2024-12-01","cf_customer_number":7,"cf_vip":false,"cf_language":null,"cf_product_area":"` + productAreaChoice() + `"}}`},
}

// productAreaChoice is a valid cf_product_area choice.
func productAreaChoice() string { return helpdeskgen.ProductAreas()[0] }

func longString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

func TestGoldenAnswers(t *testing.T) {
	e := newEnv(t, Config{Seed: 7})
	if err := e.sim.Generate(GenerateOptions{History: 40, New: 20}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSpam(5, true, false); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSpam(6, false, true); err != nil {
		t.Fatal(err)
	}
	tk, _ := e.sim.Ticket(45)
	for _, id := range e.sim.TicketIDs() {
		if t2, _ := e.sim.Ticket(id); t2.CompanyID != 0 {
			tk.CompanyID = t2.CompanyID
			break
		}
	}
	e.sim.mu.RLock()
	email := strings.ToUpper(e.sim.contacts[tk.RequesterID].email)
	e.sim.mu.RUnlock()
	subst := strings.NewReplacer("{REQ}", strconv.FormatInt(tk.RequesterID, 10),
		"{COMPANY}", strconv.FormatInt(tk.CompanyID, 10), "{EMAIL}", url.QueryEscape(email))
	record := os.Getenv("GOLDEN_RECORD") != ""
	for _, g := range goldenRequests {
		r := e.do(g.method, subst.Replace(g.path), adminKey, g.body)
		got := fmt.Sprintf("%d %s", r.status, r.body)
		if r.status == 200 {
			sum := sha256.Sum256(r.body)
			n := -1
			if r.body[0] == '[' {
				n = len(ids(t, r.body))
			}
			got = fmt.Sprintf("%d sha256:%s n:%d link:%q", r.status, hex.EncodeToString(sum[:8]), n,
				strings.TrimPrefix(r.header.Get("Link"), "<"+e.srv.URL))
		}
		if record {
			fmt.Printf("GOLDEN %q: %q,\n", g.name, got)
			continue
		}
		if want := goldenWant[g.name]; got != want {
			t.Errorf("%s: got\n%s\nwant\n%s", g.name, got, want)
		}
	}
}

var goldenWant = map[string]string{
	"update custom bad":           "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"cf_callback_date\",\"message\":\"It should be in the 'yyyy-mm-dd' format\",\"code\":\"invalid_value\"},{\"field\":\"cf_customer_number\",\"message\":\"Value set is of type Float.It should be a/an Integer\",\"code\":\"datatype_mismatch\"},{\"field\":\"cf_language\",\"message\":\"Value set is of type Boolean.It should be one of these values: 'en,de,fr,es'\",\"code\":\"datatype_mismatch\"},{\"field\":\"cf_order_number\",\"message\":\"Value set is of type Integer.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"cf_product_area\",\"message\":\"It should be one of these values: 'Web App,Mobile App,API,Hardware,Other'\",\"code\":\"invalid_value\"}]}",
	"update custom long":          "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"cf_callback_date\",\"message\":\"It should be in the 'yyyy-mm-dd' format\",\"code\":\"invalid_value\"},{\"field\":\"cf_customer_number\",\"message\":\"Value set is of type String.It should be a/an Integer\",\"code\":\"datatype_mismatch\"},{\"field\":\"cf_order_number\",\"message\":\"Has 300 characters, it can have maximum of 255 characters\",\"code\":\"invalid_value\"},{\"field\":\"cf_vip\",\"message\":\"Value set is of type Integer.It should be a/an Boolean\",\"code\":\"datatype_mismatch\"}]}",
	"update custom ok":            "200 sha256:f4f796801b885b39 n:-1 link:\"\"",
	"update all bad":              "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"aaa\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"},{\"field\":\"attachments\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"},{\"field\":\"cf_customer_number\",\"message\":\"Value set is of type String.It should be a/an Integer\",\"code\":\"datatype_mismatch\"},{\"field\":\"cf_language\",\"message\":\"Value set is of type Integer.It should be one of these values: 'en,de,fr,es'\",\"code\":\"datatype_mismatch\"},{\"field\":\"cf_nope\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"},{\"field\":\"cf_vip\",\"message\":\"Value set is of type String.It should be a/an Boolean\",\"code\":\"datatype_mismatch\"},{\"field\":\"company_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"description\",\"message\":\"Value set is of type Integer.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"due_by\",\"message\":\"It should be in the 'valid date time' format\",\"code\":\"invalid_value\"},{\"field\":\"email\",\"message\":\"It should be in the 'valid email address' format\",\"code\":\"invalid_value\"},{\"field\":\"email_config_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"facebook_id\",\"message\":\"Value set is of type Boolean.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"fr_due_by\",\"message\":\"It should be in the 'valid date time' format\",\"code\":\"invalid_value\"},{\"field\":\"group_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"internal_agent_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"internal_group_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"lookup_parameter\",\"message\":\"Value set is of type Null.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"name\",\"message\":\"Value set is of type Integer.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"parent_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"phone\",\"message\":\"Value set is of type Integer.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"priority\",\"message\":\"It should be one of these values: '1,2,3,4'\",\"code\":\"invalid_value\"},{\"field\":\"product_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"requester_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"responder_id\",\"message\":\"There is no agent matching the given responder_id\",\"code\":\"invalid_value\"},{\"field\":\"source\",\"message\":\"It should be one of these values: '1,2,3,4,5,6,7,8,9,10,11,12,13'\",\"code\":\"invalid_value\"},{\"field\":\"status\",\"message\":\"Value set is of type String.It should be one of these values: '2,3,4,5,6,7'\",\"code\":\"datatype_mismatch\"},{\"field\":\"subject\",\"message\":\"It should not be blank as this is a mandatory field\",\"code\":\"invalid_value\"},{\"field\":\"tags\",\"message\":\"It should contain elements of type String only\",\"code\":\"datatype_mismatch\"},{\"field\":\"twitter_id\",\"message\":\"Value set is of type Array.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"type\",\"message\":\"Value set is of type Integer.It should be one of these values: 'Question,Incident,Problem,Feature Request,Refund'\",\"code\":\"datatype_mismatch\"},{\"field\":\"unique_external_id\",\"message\":\"Value set is of type key/value pair.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"zzz\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"}]}",
	"update long values":          "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"cf_product\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"},{\"field\":\"cf_since\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"},{\"field\":\"email\",\"message\":\"Has 260 characters, it can have maximum of 255 characters\",\"code\":\"invalid_value\"},{\"field\":\"subject\",\"message\":\"Has 256 characters, it can have maximum of 255 characters\",\"code\":\"invalid_value\"},{\"field\":\"tags\",\"message\":\"Each tag should have a maximum of 255 characters\",\"code\":\"invalid_value\"}]}",
	"update type null ok":         "200 sha256:db91281c78974376 n:-1 link:\"\"",
	"create missing":              "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"priority\",\"message\":\"Value set is of type String.It should be one of these values: '1,2,3,4'\",\"code\":\"datatype_mismatch\"},{\"field\":\"requester_id\",\"message\":\"Please fill at least 1 of requester_id, email, phone, facebook_id, twitter_id, unique_external_id attributes\",\"code\":\"missing_field\"},{\"field\":\"subject\",\"message\":\"It should be a/an String\",\"code\":\"missing_field\"}]}",
	"create bad requester":        "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"requester_id\",\"message\":\"There is no contact matching the given requester_id\",\"code\":\"invalid_value\"}]}",
	"list all bad":                "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"filter\",\"message\":\"It should be one of these values: 'new_and_my_open,watching,spam,deleted'\",\"code\":\"invalid_value\"},{\"field\":\"requester_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"company_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"updated_since\",\"message\":\"It should be in the 'valid date time' format\",\"code\":\"invalid_value\"},{\"field\":\"order_by\",\"message\":\"It should be one of these values: 'created_at,due_by,updated_at,status'\",\"code\":\"invalid_value\"},{\"field\":\"order_type\",\"message\":\"It should be one of these values: 'asc,desc'\",\"code\":\"invalid_value\"}]}",
	"list bad page":               "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"page\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"}]}",
	"list page cap":               "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"page\",\"message\":\"You cannot access tickets beyond the 300th page. Please provide a smaller page number.\",\"code\":\"invalid_value\"}]}",
	"list bad per_page":           "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"per_page\",\"message\":\"It should be a/an Positive Integer less than or equal to 100\",\"code\":\"invalid_value\"}]}",
	"list bad include":            "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"include\",\"message\":\"It should be one of these values: 'requester,stats,description'\",\"code\":\"invalid_value\"}]}",
	"list unknown params":         "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"aa\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"},{\"field\":\"zz\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"}]}",
	"list new_and_my_open":        "200 sha256:da8cccf9117038fb n:20 link:\"\"",
	"list spam":                   "200 sha256:4f53cda18c2baa0c n:0 link:\"\"",
	"list deleted":                "200 sha256:fc7c8801e8b22bd8 n:1 link:\"\"",
	"list watching":               "200 sha256:4f53cda18c2baa0c n:0 link:\"\"",
	"list external id":            "200 sha256:4f53cda18c2baa0c n:0 link:\"\"",
	"list by email":               "200 sha256:6b51b94a7bed048e n:1 link:\"\"",
	"list by email and since":     "200 sha256:2e4bc4ad087cb5db n:1 link:\"\"",
	"list by requester in window": "200 sha256:2e4bc4ad087cb5db n:1 link:\"\"",
	"list by company in window":   "200 sha256:c8fab24d264f8866 n:3 link:\"\"",
	"list by unknown email":       "200 sha256:4f53cda18c2baa0c n:0 link:\"\"",
	"list by requester":           "200 sha256:2e4bc4ad087cb5db n:1 link:\"\"",
	"list by company":             "200 sha256:f256caf7dc10dbdb n:6 link:\"\"",
	"list due_by":                 "200 sha256:1d7f104b61a6e416 n:3 link:\"/api/v2/tickets?order_by=due_by&per_page=3&page=3>; rel=\\\"next\\\"\"",
	"list status asc":             "200 sha256:2800ae6fb3516817 n:4 link:\"/api/v2/tickets?order_by=status&order_type=asc&per_page=4&page=2>; rel=\\\"next\\\"\"",
	"list updated desc":           "200 sha256:318cb010ea8035a5 n:2 link:\"/api/v2/tickets?order_by=updated_at&per_page=2&updated_since=2025-03-01T00%3A00%3A00Z&page=3>; rel=\\\"next\\\"\"",
	"list default":                "200 sha256:1b09662f8e5364a1 n:5 link:\"/api/v2/tickets?per_page=5&page=2>; rel=\\\"next\\\"\"",
	"note all bad":                "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"body\",\"message\":\"It should not be blank as this is a mandatory field\",\"code\":\"invalid_value\"},{\"field\":\"incoming\",\"message\":\"Value set is of type Integer.It should be a/an Boolean\",\"code\":\"datatype_mismatch\"},{\"field\":\"notify_emails\",\"message\":\"It should contain elements that are in the 'valid email address' format\",\"code\":\"invalid_value\"},{\"field\":\"private\",\"message\":\"Value set is of type String.It should be a/an Boolean\",\"code\":\"datatype_mismatch\"},{\"field\":\"user_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"},{\"field\":\"zz\",\"message\":\"Unexpected/invalid field in request\",\"code\":\"invalid_field\"}]}",
	"note bad types":              "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"body\",\"message\":\"Value set is of type Integer.It should be a/an String\",\"code\":\"datatype_mismatch\"},{\"field\":\"notify_emails\",\"message\":\"Value set is of type String.It should be a/an Array\",\"code\":\"datatype_mismatch\"},{\"field\":\"user_id\",\"message\":\"It should be a/an Positive Integer\",\"code\":\"invalid_value\"}]}",
	"note missing body":           "400 {\"description\":\"Validation failed\",\"errors\":[{\"field\":\"body\",\"message\":\"It should be a/an String\",\"code\":\"missing_field\"}]}",
	"ticket fields":               "200 sha256:9fb65e852bcb01a4 n:16 link:\"\"",
	"ticket fields by type":       "200 sha256:889f2790f621ba9e n:2 link:\"\"",
}
