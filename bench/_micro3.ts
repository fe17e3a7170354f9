const a: number[] = [];
const N=5e6;
for (let r=0;r<3;r++){
let t=process.hrtime.bigint(); for(let i=0;i<N;i++){ a.push(i); a.push(i); a.length=0; } console.log('len0', Number(process.hrtime.bigint()-t)/N);
t=process.hrtime.bigint(); for(let i=0;i<N;i++){ a.push(i); a.push(i); while(a.length>0)a.pop(); } console.log('pop', Number(process.hrtime.bigint()-t)/N);
}
