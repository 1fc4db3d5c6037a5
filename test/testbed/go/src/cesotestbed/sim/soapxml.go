package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

const envelopeOpen = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` + "\n<soapenv:Body>\n"
const envelopeClose = "</soapenv:Body>\n</soapenv:Envelope>"

// faultMessages are the localized messages a real ESXi host sends with each fault.
var faultMessages = map[string]string{
	"NotSupported":               "The operation is not supported on the object.",
	"InvalidState":               "The operation is not allowed in the current state.",
	"InvalidPowerState":          "The attempted operation cannot be performed in the current state (%s).",
	"InvalidLogin":               "Cannot complete login due to an incorrect user name or password.",
	"NotAuthenticated":           "The session is not authenticated.",
	"NoPermission":               "Permission to perform this operation was denied.",
	"FileAlreadyExists":          "Cannot complete the operation because the file or folder %s already exists",
	"FileNotFound":               "File %s was not found",
	"CannotCreateFile":           "Cannot create file %s",
	"CannotDeleteFile":           "Cannot delete file %s",
	"DuplicateName":              "The name '%s' already exists.",
	"AlreadyExists":              "The specified key, name, or identifier '%s' already exists.",
	"NoDiskSpace":                "There is not enough space on the file system for the selected operation.",
	"InsufficientResourcesFault": "Insufficient resources to satisfy configuration.",
	"InvalidArgument":            "A specified parameter was not correct: %s",
	"InvalidDeviceSpec":          "Invalid configuration for device '%d'.",
	"InvalidDatastore":           "Invalid datastore path '%s'.",
	"InvalidDatastorePath":       "Invalid datastore path '%s'.",
	"ManagedObjectNotFound":      "The object '%s' has already been deleted or has not been completely created",
	"MethodNotFound":             "Method %s not found.",
	"NotFound":                   "The object or item referred to could not be found.",
	"ToolsUnavailable":           "Cannot complete operation because VMware Tools is not running in this virtual machine.",
	"TaskInProgress":             "The operation is not allowed in the current state.",
	"RequestCanceled":            "The task was canceled by a user.",
	"SystemError":                "A general system error occurred: %s",
	"HostCommunication":          "An error occurred while communicating with the remote host.",
	"InvalidVmConfig":            "Invalid virtual machine configuration.",
	"VmConfigFault":              "Invalid virtual machine configuration.",
	"FileLocked":                 "Unable to access file since it is locked",
	"ResourceInUse":              "The resource '%s' is in use.",
	"Timedout":                   "Operation timed out.",
}

// faultMessage renders the real host's message for fault.
func faultMessage(fault types.BaseMethodFault) string {
	name := faultName(fault)
	msg, ok := faultMessages[name]
	if !ok {
		return fmt.Sprintf("A general system error occurred: %s", name)
	}
	if !strings.Contains(msg, "%") {
		return msg
	}
	var arg interface{} = ""
	switch f := fault.(type) {
	case *types.InvalidPowerState:
		arg = powerStateLabel(string(f.ExistingState))
	case types.BaseFileFault:
		arg = f.GetFileFault().File
	case *types.DuplicateName:
		arg = f.Name
	case *types.AlreadyExists:
		arg = f.Name
	case *types.InvalidArgument:
		arg = f.InvalidProperty
	case *types.InvalidDeviceSpec:
		arg = f.DeviceIndex
	case *types.InvalidDatastore:
		arg = f.Name
	case *types.InvalidDatastorePath:
		arg = f.DatastorePath
	case *types.ManagedObjectNotFound:
		arg = "vim." + f.Obj.Type + ":" + f.Obj.Value
	case *types.MethodNotFound:
		arg = f.Method
	case *types.ResourceInUse:
		arg = f.Name
	case *types.SystemError:
		arg = f.Reason
	}
	if _, isInt := arg.(int32); isInt {
		return fmt.Sprintf(msg, arg)
	}
	return fmt.Sprintf(msg, fmt.Sprint(arg))
}

func powerStateLabel(s string) string {
	switch s {
	case "poweredOn":
		return "Powered on"
	case "poweredOff":
		return "Powered off"
	case "suspended":
		return "Suspended"
	}
	return s
}

func faultName(f types.BaseMethodFault) string {
	return reflect.TypeOf(f).Elem().Name()
}

// newFault instantiates a fault by its vSphere type name, filling fields from props (JSON).
func newFault(name string, props json.RawMessage) (types.BaseMethodFault, error) {
	typ, ok := types.TypeFunc()(name)
	if !ok {
		return nil, fmt.Errorf("unknown fault type %q", name)
	}
	v := reflect.New(typ).Interface()
	f, ok := v.(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("%q is not a fault type", name)
	}
	if len(props) > 0 {
		if err := json.Unmarshal(props, v); err != nil {
			return nil, fmt.Errorf("fault props: %w", err)
		}
	}
	return f, nil
}

// faultXML renders the body of a SOAP fault as a real host does.
func faultXML(fault types.BaseMethodFault, msg string) []byte {
	if msg == "" {
		msg = faultMessage(fault)
	}
	var detail bytes.Buffer
	enc := xml.NewEncoder(&detail)
	kind := faultName(fault)
	start := xml.StartElement{
		Name: xml.Name{Local: kind + "Fault"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "xmlns"}, Value: "urn:vim25"},
			{Name: xml.Name{Local: "xsi:type"}, Value: kind},
		},
	}
	if err := enc.EncodeElement(fault, start); err != nil {
		detail.Reset()
		fmt.Fprintf(&detail, `<%sFault xmlns="urn:vim25" xsi:type="%s"></%sFault>`, kind, kind, kind)
	}
	_ = enc.Flush()
	var b bytes.Buffer
	b.WriteString(envelopeOpen)
	b.WriteString("<soapenv:Fault>\n  <faultcode>ServerFaultCode</faultcode>\n  <faultstring>")
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString("</faultstring>\n  <detail>\n    ")
	b.Write(detail.Bytes())
	b.WriteString("\n  </detail>\n</soapenv:Fault>\n")
	b.WriteString(envelopeClose)
	return b.Bytes()
}

func writeXML(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeFault(w http.ResponseWriter, fault types.BaseMethodFault, msg string) {
	writeXML(w, http.StatusInternalServerError, faultXML(fault, msg))
}

// taskResponseXML is the response of a *_Task method: the Task's moref.
func taskResponseXML(method string, task types.ManagedObjectReference) []byte {
	return []byte(fmt.Sprintf("%s<%sResponse xmlns=\"urn:vim25\"><returnval type=\"Task\">%s</returnval></%sResponse>\n%s",
		envelopeOpen, method, xmlEscape(task.Value), method, envelopeClose))
}

// voidResponseXML is the response of a method that returns nothing.
func voidResponseXML(method string) []byte {
	return []byte(fmt.Sprintf("%s<%sResponse xmlns=\"urn:vim25\"></%sResponse>\n%s", envelopeOpen, method, method, envelopeClose))
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

var (
	taskReturnRE  = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)
	faultTypeRE   = regexp.MustCompile(`<detail>\s*<(\w+)Fault[^>]*xsi:type="(\w+)"`)
	faultStringRE = regexp.MustCompile(`<faultstring>([^<]*)</faultstring>`)
	objRE         = regexp.MustCompile(`<obj type="(\w+)">([^<]+)</obj>`)
)

// fixFaultString gives vcsim's faults the message a real host sends (vcsim often sends none,
// or "Login failure" for InvalidLogin).
func fixFaultString(body []byte) []byte {
	m := faultTypeRE.FindSubmatch(body)
	if m == nil {
		return body
	}
	kind := string(m[2])
	cur := faultStringRE.FindSubmatch(body)
	if cur == nil {
		return body
	}
	if kind == "ManagedObjectNotFound" {
		if o := objRE.FindSubmatch(body); o != nil {
			msg := fmt.Sprintf(faultMessages[kind], "vim."+string(o[1])+":"+string(o[2]))
			return faultStringRE.ReplaceAll(body, []byte("<faultstring>"+xmlEscape(msg)+"</faultstring>"))
		}
	}
	if len(cur[1]) > 0 && kind != "InvalidLogin" && kind != "NotAuthenticated" {
		return body
	}
	msg, ok := faultMessages[kind]
	if !ok || strings.Contains(msg, "%") {
		if len(cur[1]) > 0 {
			return body
		}
		msg = strings.SplitN(msg, ":", 2)[0]
		if msg == "" {
			msg = "A general system error occurred: " + kind
		}
		msg = strings.ReplaceAll(msg, "%s", "")
		msg = strings.ReplaceAll(msg, "%d", "")
	}
	return faultStringRE.ReplaceAll(body, []byte("<faultstring>"+xmlEscape(msg)+"</faultstring>"))
}
