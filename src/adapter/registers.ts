/** Register values as DAP variables. */
import { DebugProtocol } from '@vscode/debugprotocol';
import { RegisterValue, leToBigInt } from '../engine/target';

export function formatRegister(r: RegisterValue): string {
  const bits = r.info.bitsize;
  const v = leToBigInt(r.bytes);
  return '0x' + v.toString(16).padStart(Math.ceil(bits / 4), '0');
}

export function registerVariables(values: RegisterValue[]): DebugProtocol.Variable[] {
  return values.map((r) => ({
    name: r.info.name,
    value: formatRegister(r),
    type: r.info.type,
    variablesReference: 0,
    presentationHint: { kind: 'property', attributes: ['readOnly'] },
  }));
}
