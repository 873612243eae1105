/**
 * Section offsets get distinct branded types so an offset into one section can never index
 * another by mistake (a .debug_info offset passed where a .debug_line one is wanted fails to
 * compile). The brands cost nothing at run time.
 */
declare const brand: unique symbol;
type Offset<Section extends string> = number & { readonly [brand]: Section };

export type DebugInfoOffset = Offset<'.debug_info'>;
export type DebugAbbrevOffset = Offset<'.debug_abbrev'>;
export type DebugLineOffset = Offset<'.debug_line'>;
export type DebugStrOffset = Offset<'.debug_str'>;
export type DebugLineStrOffset = Offset<'.debug_line_str'>;
export type DebugStrOffsetsBase = Offset<'.debug_str_offsets'>;
export type DebugAddrBase = Offset<'.debug_addr'>;
export type DebugRangesOffset = Offset<'.debug_ranges'>;
export type DebugRngListsOffset = Offset<'.debug_rnglists'>;
export type DebugLocListsOffset = Offset<'.debug_loclists'>;
export type DebugLocOffset = Offset<'.debug_loc'>;
export type DebugFrameOffset = Offset<'.debug_frame'>;
export type DebugArangesOffset = Offset<'.debug_aranges'>;

export const infoOffset = (n: number): DebugInfoOffset => n as DebugInfoOffset;
export const abbrevOffset = (n: number): DebugAbbrevOffset => n as DebugAbbrevOffset;
export const lineOffset = (n: number): DebugLineOffset => n as DebugLineOffset;
export const strOffset = (n: number): DebugStrOffset => n as DebugStrOffset;
export const lineStrOffset = (n: number): DebugLineStrOffset => n as DebugLineStrOffset;
export const strOffsetsBase = (n: number): DebugStrOffsetsBase => n as DebugStrOffsetsBase;
export const addrBase = (n: number): DebugAddrBase => n as DebugAddrBase;
export const rangesOffset = (n: number): DebugRangesOffset => n as DebugRangesOffset;
export const rngListsOffset = (n: number): DebugRngListsOffset => n as DebugRngListsOffset;
export const locListsOffset = (n: number): DebugLocListsOffset => n as DebugLocListsOffset;
export const locOffset = (n: number): DebugLocOffset => n as DebugLocOffset;
export const frameOffset = (n: number): DebugFrameOffset => n as DebugFrameOffset;
