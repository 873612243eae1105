/**
 * The parts of @alexaltea/capstone-js (Capstone 5.0 compiled to wasm by Emscripten) we use.
 * Its own JS wrapper reads cs_detail at Capstone 4 offsets, so we call the C API directly
 * and read the structures ourselves (see capstone.ts).
 */
declare module '@alexaltea/capstone-js' {
  export interface CapstoneModule {
    ccall(name: string, ret: 'number' | 'string' | null, argTypes: string[], args: Array<number | bigint>): number;
    getValue(ptr: number, type: 'i8' | 'i16' | 'i32' | 'i64'): number | bigint;
    setValue(ptr: number, value: number, type: 'i8' | 'i32'): void;
    writeArrayToMemory(array: Uint8Array | number[], ptr: number): void;
    UTF8ToString(ptr: number): string;
    _malloc(size: number): number;
    _free(ptr: number): void;
  }
  interface Options {
    wasmBinary?: Uint8Array;
    locateFile?: (file: string, dir: string) => string;
  }
  const factory: (options?: Options) => Promise<CapstoneModule>;
  export default factory;
}
