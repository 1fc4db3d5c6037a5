import { describe, expect, it } from 'vitest';
import { parseFault, faultToError } from '../../src/esxi/soap/faults.js';
import { MoRef, Typed, asArray, asObject, decodeBody, encodeCall } from '../../src/esxi/soap/xml.js';

const envelope = (body: string, xsiPrefix = 'xsi'): string =>
  `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:${xsiPrefix}="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;

describe('encodeCall', () => {
  it('writes the method, _this, typed values and arrays in order, escaping text', () => {
    const xml = encodeCall('RetrievePropertiesEx', new MoRef('PropertyCollector', 'ha-property-collector'), {
      specSet: {
        propSet: [{ type: 'VirtualMachine', all: false, pathSet: ['name', 'config.uuid'] }],
        objectSet: [{ obj: new MoRef('Folder', 'ha-folder-root'), skip: false, selectSet: [new Typed('TraversalSpec', { name: 'f', type: 'Folder', path: 'childEntity' })] }],
      },
      options: {},
      note: `a<b & "c" 'd'`,
      value: new Typed('xsd:string', 'x'),
    });
    expect(xml).toContain('<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">ha-property-collector</_this><specSet><propSet><type>VirtualMachine</type><all>false</all><pathSet>name</pathSet><pathSet>config.uuid</pathSet></propSet>');
    expect(xml).toContain('<obj type="Folder">ha-folder-root</obj><skip>false</skip><selectSet xsi:type="TraversalSpec"><name>f</name>');
    expect(xml).toContain('<options></options>');
    expect(xml).toContain('<note>a&#60;b &#38; &#34;c&#34; &#39;d&#39;</note>');
    expect(xml).toContain('<value xsi:type="xsd:string">x</value>');
    expect(xml.indexOf('<_this')).toBeLessThan(xml.indexOf('<specSet>'));
  });

  it('skips undefined and null fields', () => {
    expect(encodeCall('M', new MoRef('T', 'v'), { a: undefined, b: null, c: 1 })).toContain('<_this type="T">v</_this><c>1</c></M>');
  });
});

describe('decodeBody', () => {
  it('decodes references, ArrayOf values, xsi types under any prefix, and entities', () => {
    for (const prefix of ['xsi', 'XMLSchema-instance']) {
      const xml = envelope(
        `<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-9</obj>` +
          `<propSet><name>config.extraConfig</name><val ${prefix}:type="ArrayOfOptionValue"><OptionValue ${prefix}:type="OptionValue"><key>guestinfo.a</key><value ${prefix}:type="xsd:string">x&#34;y &amp; z</value></OptionValue></val></propSet>` +
          `<propSet><name>network</name><val ${prefix}:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Network">network-7</ManagedObjectReference></val></propSet>` +
          `<propSet><name>name</name><val ${prefix}:type="xsd:string">0042</val></propSet>` +
          `</objects><token>tok1</token></returnval></RetrievePropertiesExResponse>`,
        prefix,
      );
      const { name, value } = decodeBody(xml);
      expect(name).toBe('RetrievePropertiesExResponse');
      const returnval = asObject(value.returnval);
      expect(returnval.token).toBe('tok1');
      const objects = asArray(returnval.objects).map(asObject);
      expect(objects[0]?.obj).toEqual(new MoRef('VirtualMachine', 'vm-9'));
      const props = asArray(objects[0]?.propSet).map(asObject);
      const extra = asArray(props[0]?.val).map(asObject);
      expect(extra).toEqual([{ _type: 'OptionValue', key: 'guestinfo.a', value: 'x"y & z' }]);
      expect(props[1]?.val).toEqual([new MoRef('Network', 'network-7')]);
      expect(props[2]?.val).toBe('0042');
    }
  });

  it('returns an empty list for an empty ArrayOf value and keeps single list elements readable with asArray', () => {
    const xml = envelope(`<R xmlns="urn:vim25"><returnval><a xsi:type="ArrayOfString"></a><b><c>1</c></b></returnval></R>`);
    const returnval = asObject(decodeBody(xml).value.returnval);
    expect(returnval.a).toEqual([]);
    expect(asArray(returnval.b)).toEqual([{ c: '1' }]);
  });

  it('rejects a body that is not SOAP', () => {
    expect(() => decodeBody('<html><body>503</body></html>')).toThrow(/not a SOAP envelope/);
  });
});

describe('faults', () => {
  const fault = (type: string, prefix = 'xsi'): ReturnType<typeof parseFault> => {
    const xml = envelope(
      `<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password.</faultstring><detail><${type}Fault xmlns="urn:vim25" ${prefix}:type="${type}"></${type}Fault></detail></soapenv:Fault>`,
      prefix,
    );
    return parseFault(decodeBody(xml).value, 'Login');
  };

  it('takes the fault type from the detail, not the localized text', () => {
    expect(fault('InvalidLogin').faultType).toBe('InvalidLogin');
    expect(fault('NotSupported', 'XMLSchema-instance').faultType).toBe('NotSupported');
  });

  it('maps fault types to error codes and exit codes', () => {
    expect(faultToError(fault('InvalidLogin'))).toMatchObject({ code: 'AUTH_FAILED', exitCode: 6 });
    expect(faultToError(fault('NotFound'))).toMatchObject({ code: 'NOT_FOUND', exitCode: 3 });
    expect(faultToError(fault('InvalidPowerState'))).toMatchObject({ code: 'INVALID_POWER_STATE', exitCode: 4 });
    expect(faultToError(fault('NotSupported'))).toMatchObject({ code: 'NOT_SUPPORTED', exitCode: 8 });
    expect(faultToError(fault('SomethingNew'))).toMatchObject({ code: 'HOST_FAULT', exitCode: 8 });
  });
});

describe('decodeBody shortcuts', () => {
  it('drops redundant namespace and xsd type markup but never touches text', () => {
    const text = 'note: <val xmlns:x="http://www.w3.org/2001/XMLSchema-instance" x:type="xsd:string"> stays';
    const xml = envelope(
      `<R xmlns="urn:vim25"><returnval><a xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string">${text.replace(/</g, '&lt;').replace(/>/g, '&gt;')}</a>` +
        `<b xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfString"><string>x</string></b><c xsi:type="xsd:int">7</c><d xsi:type="xsd:string"/></returnval></R>`,
    );
    const returnval = asObject(decodeBody(xml).value.returnval);
    expect(returnval.a).toBe(text);
    expect(returnval.b).toEqual(['x']);
    expect(returnval.c).toBe('7');
    expect(returnval.d).toBe('');
  });
});
