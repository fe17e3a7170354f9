import { CompareEngine } from '../compare/engine.js';
import { buildTcp } from '../compare/wire/build.js';
const payload = Buffer.alloc(1448, 7);
const N=64, W=4;
const P: Buffer[][] = [], Q: Buffer[][] = [];
for (let c=0;c<N;c++){P.push([]);Q.push([]);for(let s=0;s<W;s++){const b={src:'192.168.0.2',dst:'10.0.0.'+(c+1),srcPort:80,dstPort:1024+c,ack:7777,flags:0x18,payload};P[c].push(buildTcp({...b,seq:0}));Q[c].push(buildTcp({...b,seq:0}));}}
const e=new CompareEngine();
let tot=0, n=0;
for (let g=0; g<3000; g++){
  for (let c=0;c<N;c++) for (let k=0;k<W;k++){ const r=g*W+k; P[c][k].writeUInt32BE((1000+r*1448)>>>0,38); Q[c][k].writeUInt32BE((900000+r*1448)>>>0,38); }
  const t=process.cpuUsage();
  for (let k=0;k<W;k++) for (let c=0;c<N;c++){ e.push('primary',P[c][k],0,g,0); e.push('secondary',Q[c][k],0,g,0); }
  const u=process.cpuUsage(t); if (g>10){tot+=u.user+u.system; n+=2*N*W;}
}
console.log('ns/pkt', tot*1000/n, 'Mpps', n/tot);
