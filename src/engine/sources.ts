/**
 * Source-level answers over every loaded image: vmlinux's own SourceInfo (this class extends
 * it, so code that only knows vmlinux keeps working) and one per loaded module. Questions
 * about an address go to the image holding it; questions about a name or a file are asked of
 * every image, vmlinux first.
 */
import type { UnwindRow } from '../symbols/dwarf/frame';
import type { Range } from '../symbols/dwarf/ranges';
import { ImageSet, type Image } from '../symbols/imageset';
import type { SymbolIndex } from '../symbols/index/client';
import { SourceInfo, type CodeLocation, type FrameDescription, type FrameScope, type InlineStop, type LineResolution, type StepLine } from './sourceinfo';
import { SourceMapper } from './sourcemap';

export class SourceSet extends SourceInfo {
  readonly images: ImageSet;
  private readonly perModule = new Map<string, SourceInfo>();

  constructor(kernel: Image, mapper: SourceMapper, index: SymbolIndex | undefined, private readonly moduleMapper: (image: Image) => SourceMapper) {
    super(kernel.symbols, kernel.dwarf, mapper, index, kernel.relocation);
    this.images = new ImageSet(kernel);
  }

  addModule(image: Image): SourceInfo {
    this.images.add(image);
    const info = new SourceInfo(image.symbols, image.dwarf, this.moduleMapper(image));
    this.perModule.set(image.name, info);
    return info;
  }

  removeModule(name: string): Image | undefined {
    this.perModule.delete(name);
    return this.images.remove(name);
  }

  /** The module image's own answers (for re-resolving breakpoints in it alone). */
  moduleSource(name: string): SourceInfo | undefined {
    return this.perModule.get(name);
  }

  /** The image the code at pc belongs to (vmlinux when no module holds it). */
  imageAt(pc: bigint): Image {
    return this.images.imageAt(pc);
  }

  private at(pc: bigint): SourceInfo | undefined {
    const m = this.images.moduleAt(pc);
    return m && this.perModule.get(m.name);
  }

  override lineAt(pc: bigint): StepLine | undefined {
    return this.at(pc)?.lineAt(pc) ?? (this.images.moduleAt(pc) ? undefined : super.lineAt(pc));
  }

  override stepRange(pc: bigint, line: number, file: string): [bigint, bigint] | undefined {
    const m = this.at(pc);
    return m ? m.stepRange(pc, line, file) : super.stepRange(pc, line, file);
  }

  override describe(pc: bigint, isCaller: boolean, reveal?: ReadonlySet<string>): FrameDescription[] {
    const m = this.at(isCaller ? pc - 1n : pc);
    return m ? m.describe(pc, isCaller, reveal) : super.describe(pc, isCaller, reveal);
  }

  override inlineChainAt(pc: bigint): FrameDescription[] {
    const m = this.at(pc);
    return m ? m.inlineChainAt(pc) : super.inlineChainAt(pc);
  }

  override frameScope(pc: bigint, isCaller: boolean, inlineDepth: number, reveal?: ReadonlySet<string>): FrameScope | undefined {
    const m = this.at(isCaller ? pc - 1n : pc);
    return m ? m.frameScope(pc, isCaller, inlineDepth, reveal) : super.frameScope(pc, isCaller, inlineDepth, reveal);
  }

  override inlineStop(pc: bigint): InlineStop {
    const m = this.at(pc);
    return m ? m.inlineStop(pc) : super.inlineStop(pc);
  }

  override functionRanges(pc: bigint): readonly Range[] {
    const m = this.at(pc);
    return m ? m.functionRanges(pc) : super.functionRanges(pc);
  }

  override inlinedRanges(pc: bigint, depth: number): readonly Range[] | undefined {
    const m = this.at(pc);
    return m ? m.inlinedRanges(pc, depth) : super.inlinedRanges(pc, depth);
  }

  override cfiRow(pc: bigint): UnwindRow | undefined {
    const m = this.at(pc);
    return m ? m.cfiRow(pc) : super.cfiRow(pc);
  }

  override inDwarfFunction(pc: bigint): boolean {
    const m = this.at(pc);
    return m ? m.inDwarfFunction(pc) : super.inDwarfFunction(pc);
  }

  override patchableEntry(pc: bigint): bigint | undefined {
    const m = this.at(pc);
    return m ? m.patchableEntry(pc) : super.patchableEntry(pc);
  }

  override isFunctionEntry(pc: bigint): boolean {
    const m = this.at(pc);
    return m ? m.isFunctionEntry(pc) : super.isFunctionEntry(pc);
  }

  override functionEntries(name: string): CodeLocation[] {
    const out = super.functionEntries(name);
    for (const m of this.perModule.values()) out.push(...m.functionEntries(name));
    return out;
  }

  override async inlinedLocations(name: string): Promise<CodeLocation[]> {
    const out = await super.inlinedLocations(name);
    for (const m of this.perModule.values()) out.push(...(await m.inlinedLocations(name)));
    return out;
  }

  override async functionLocations(name: string): Promise<CodeLocation[]> {
    const out = await super.functionLocations(name);
    for (const m of this.perModule.values()) out.push(...(await m.functionLocations(name)));
    return out;
  }

  override async lineLocations(clientPath: string, line: number): Promise<LineResolution | undefined> {
    let best = await super.lineLocations(clientPath, line);
    for (const m of this.perModule.values()) {
      const r = await m.lineLocations(clientPath, line);
      if (!r || !r.locations.length) continue;
      // The nearest line with code wins, as within one image; equal lines pool their addresses.
      if (!best || !best.locations.length || r.line < best.line) best = r;
      else if (r.line === best.line) best = { line: best.line, locations: [...best.locations, ...r.locations] };
    }
    return best;
  }

  override async warm(addresses: readonly bigint[]): Promise<void> {
    const mine = addresses.filter((a) => !this.images.moduleAt(a));
    await super.warm(mine);
  }
}
